"""Live views: Streamlit v2 components whose JavaScript (ui/components/NAME.js, NAME.css) decodes
codes in the browser with the model's exported decoder (services.live), so the image follows
the mouse with no server round trip. Python hears from a view only when the mouse is released."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from services.live import LiveDecoder, live_decoder

COMPONENTS = Path(__file__).parent / "components"


@st.cache_resource(show_spinner="Exporting the decoder for the browser…", max_entries=16)
def decoder_for(model_key: str, _model) -> LiveDecoder:
    """The model's live decoder (exported once per model and server process)."""
    return live_decoder(_model)


@st.cache_resource(max_entries=16)
def component(name: str):
    """Register ui/components/NAME.js (and NAME.css if present) once per server process."""
    css = COMPONENTS / f"{name}.css"
    return st.components.v2.component(
        f"vae_{name}",
        html=f'<div class="vae-{name}"></div>',
        css=css.read_text() if css.exists() else None,
        js=(COMPONENTS / f"{name}.js").read_text(),
    )


def fallback_note(decoder: LiveDecoder) -> None:
    """Say that this view decodes on the server (each change is a round trip), and why."""
    st.caption(f"Live decoding is off here: {decoder.reason}. Images are decoded on the server instead.")
