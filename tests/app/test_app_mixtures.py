"""The Mixtures page under Streamlit's AppTest: both models' densities and samples, the K slider, Resample."""

from __future__ import annotations

import json
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest
from vae_helpers import no_exception

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "7_Mixtures.py")
CHARTS = {"mx_gmm_density", "mx_vae_density", "mx_decoder", "mx_gmm_samples", "mx_vae_samples"}


def charts(at: AppTest) -> dict[str, dict]:
    """Each plotly chart's figure, by its widget key (the key ends the element id)."""
    out = {}
    for c in at.get("plotly_chart"):
        key = next(k for k in CHARTS if c.proto.id.endswith(k))
        out[key] = json.loads(c.proto.spec)
    return out


def trace(fig: dict, name: str) -> dict:
    return next(t for t in fig["data"] if t.get("name") == name)


def test_the_page_draws_both_models_and_follows_k_and_resample():
    start = time.perf_counter()
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    opened = time.perf_counter() - start
    no_exception(at)
    assert opened < 60, f"the page took {opened:.1f} s to open"
    figs = charts(at)
    assert set(figs) == CHARTS
    # K = 3 by default: three weighted components on the left, nine prior-quantile components on the right.
    left = [t for t in figs["mx_gmm_density"]["data"] if t["name"].startswith("π=")]
    assert len(left) == 3
    right = [t for t in figs["mx_vae_density"]["data"] if t["name"].startswith("z=")]
    assert len(right) == 9
    assert len(at.metric) == 3 and all(m.value.startswith("-") for m in at.metric)
    samples = trace(figs["mx_vae_samples"], "2,000 samples")["x"]
    assert "ELBO" in at.expander[0].markdown[0].value

    at.slider(key="mx_k").set_value(5).run()
    no_exception(at)
    left = [t for t in charts(at)["mx_gmm_density"]["data"] if t["name"].startswith("π=")]
    assert len(left) == 5

    at.button(key="mx_resample").click().run()
    no_exception(at)
    again = trace(charts(at)["mx_vae_samples"], "2,000 samples")["x"]
    assert again != samples
