"""The Mixtures page under Streamlit's AppTest: both models' densities and samples, the K slider, Resample."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from vae_helpers import no_exception

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "7_Mixtures.py")
pytestmark = pytest.mark.slow  # the page trains its tiny VAE (1,500 steps) on first open
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


def test_em_says_whether_it_converged_and_the_notation_reads_as_in_the_panels():
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    no_exception(at)
    assert [t.value for t in at.title] == ["From a Gaussian mixture to an infinite one"]  # page_header
    assert not at.sidebar.selectbox  # no model picker: the page needs no checkpoint
    (em,) = [c.value for c in at.caption if c.value.startswith("EM ")]
    assert em.startswith("EM converged after ") and "steps" in em and "→" in em  # K = 3 converges
    heads = [s.value for s in at.subheader] + [m.value for m in at.markdown]
    assert any(r"\sum_k \pi_k" in h and h.count("$") == 2 for h in heads), heads  # LaTeX, rendered like the panels
    assert any(r"\int \mathcal N(x;" in h for h in heads), heads
    assert not [h for h in heads if "Σ_k" in h or "π_k" in h]
    for fig in charts(at).values():  # plotly draws no TeX: its names and titles are plain unicode
        names = [t.get("name", "") for t in fig["data"]] + [str(fig["layout"].get("title", {}).get("text", ""))]
        assert not [n for n in names if "_" in n or "$" in n or "\\" in n], names
    legend = [t["name"] for t in charts(at)["mx_vae_density"]["data"] if t.get("showlegend", True)]
    assert legend == ["training data", "9 components (hover for each)", "true p(x)", "model p(x)"]  # fits a column
    at.slider(key="mx_k").set_value(8).run()  # EM stops at its step limit before converging for K = 8
    (em,) = [c.value for c in at.caption if c.value.startswith("EM ")]
    assert em.startswith("EM stopped at its limit of 300 steps without converging"), em
