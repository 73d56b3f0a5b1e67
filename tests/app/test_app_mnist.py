"""The committed MNIST models on a fresh clone (no MNIST files: conftest points $VAE_DATA_DIR nowhere), under
Streamlit's AppTest: every page opens on MNIST's real test set shipped in vae/assets/mnist, never on a data set
that stands in for it, and says that nearest-image distances are to test images."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from live_components import view_data
from streamlit.testing.v1 import AppTest
from vae_helpers import no_exception, page_on_model

from vae.checkpoint import load_checkpoint
from vae.data import in_box_arrays
from vae.evaluate import encode_mean

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["2_Latent_sliders.py", "3_Interpolate.py", "4_Latent_map.py", "5_Reconstruct.py"]
MODELS = ["mnist-vae-2d", "mnist-vae-conv"]
SHIPPED = "MNIST's 10,000 test digits come from the copy shipped in vae/assets/mnist"


def texts(at: AppTest) -> list[str]:
    """Everything the page wrote as text: notes, captions, Markdown, alerts."""
    kinds = ("info", "warning", "error", "success", "caption", "markdown")
    return [e.value for kind in kinds for e in getattr(at, kind)]


def test_the_home_page_names_no_stand_in():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.session_state["model_choice"] = "mnist-vae-2d"
    at.run()
    no_exception(at)
    assert not [t for t in texts(at) if "stand in" in t or "scikit-learn" in t]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("page", PAGES)
def test_every_page_opens_on_the_shipped_test_set(page, model):
    at = page_on_model(str(ROOT / "pages" / page), model)
    assert not at.error and not at.warning
    said = texts(at)
    assert not [t for t in said if "stand in" in t or "stands in" in t or "scikit-learn" in t]
    assert any(t.startswith(SHIPPED) for t in (i.value for i in at.info))


@pytest.mark.parametrize("model", MODELS)
def test_the_latent_map_shows_mnist_test_codes(model):
    at = page_on_model(str(ROOT / "pages" / "4_Latent_map.py"), model)
    d = view_data(at, "map_live")
    n = len(d["x"])
    x, y = in_box_arrays()
    (slider,) = [s for s in at.slider if s.key.startswith("map_n@")]  # keyed by the model (ui.state.scoped)
    assert n == slider.value == 2000 and slider.max == 10_000
    assert d["decoder"]["shape"] == [1, 28, 28] and d["names"] == [str(i) for i in range(10)]
    assert d["label"] == y[:n].tolist()  # the real test digits' labels, in the file's order
    ckpt = load_checkpoint(ROOT / "checkpoints" / f"{model}.safetensors")
    assert d["decoder"]["dim"] == ckpt.config.latent_dim
    if ckpt.config.latent_dim == 2:  # raw codes: each point is the posterior mean of that test digit
        mu = encode_mean(ckpt.model, torch.from_numpy(x[:n]).float().div(255).unsqueeze(1)).numpy()
        assert np.allclose(np.stack([d["x"], d["y"]], 1), mu, atol=1e-4)


def test_interpolate_measures_against_test_images_when_no_training_images_are_here():
    at = page_on_model(str(ROOT / "pages" / "3_Interpolate.py"), "mnist-vae-2d")
    assert any("distances are to the nearest test image" in c.value for c in at.caption)
    (pick,) = [s for s in at.selectbox if (s.key or "").startswith("ip_metric@")]  # scoped to the model
    assert pick.value == "pixel distance to nearest test image"
    assert "distance to nearest test code" in pick.options
    assert not [o for o in pick.options if "training" in o]
    (chart,) = at.get("plotly_chart")
    for trace in json.loads(chart.proto.spec)["data"]:
        y = trace["y"]
        if isinstance(y, dict):  # plotly's binary encoding of arrays
            y = np.frombuffer(base64.b64decode(y["bdata"]), dtype=np.dtype(y["dtype"]))
        assert len(y) == 9 and np.isfinite(np.asarray(y, dtype=float)).all()
