"""VAE Explorer: the navigation. Home (home.py) first, then every page under pages/ in file order.

Run with ``streamlit run app.py``. Each page keeps the URL the pages/ folder gave it (pages/2_Latent_sliders.py
is /Latent_sliders) and runs on its own too, as AppTest runs it.
"""

from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent

st.set_page_config(page_title="VAE Explorer", page_icon="🌗", layout="wide")
pages = [st.Page(ROOT / "home.py", title="Home", icon="🌗", default=True)]
pages += [st.Page(p) for p in sorted((ROOT / "pages").glob("*.py"))]
st.navigation(pages).run()
