"""The home page under Streamlit's AppTest: the model card, prior samples, the model picker; every page's first load."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from vae_helpers import no_exception, open_app

from services.registry import DEFAULT_CHECKPOINT

ROOT = Path(__file__).resolve().parents[2]
HOME = str(ROOT / "app.py")
PAGES = ["app.py", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("*.py"))]

pytestmark = pytest.mark.skipif(
    not (ROOT / "checkpoints" / f"{DEFAULT_CHECKPOINT}.safetensors").exists(),
    reason="the default checkpoint is not committed",
)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def image_urls(at: AppTest) -> list[str]:
    return [i.url for img in at.get("image") for i in img.proto.imgs]


def home(**state) -> AppTest:
    return open_app(HOME, **state)


def test_home_shows_the_default_model_card_and_samples():
    at = home()
    assert not at.error
    assert at.selectbox(key="model_picker").value == DEFAULT_CHECKPOINT
    assert at.session_state["model_choice"] == DEFAULT_CHECKPOINT
    assert [s.value for s in at.subheader] == [f"Model card · {DEFAULT_CHECKPOINT}", "Samples from the prior"]
    card = metrics(at)
    assert card["Data set"] == "moons"
    assert card["Kind"] == "VAE" and card["Architecture"] == "MLP" and card["Latent size"] == "16"
    assert int(card["Epochs"]) > 0
    assert card["β"] == "1" and card["Likelihood"] == "bernoulli"
    elbo = float(card["Test ELBO (nats)"])
    iwae_label = next(k for k in card if k.startswith("Test IWAE k="))
    label = re.fullmatch(r"Test IWAE k=(\d+)", iwae_label)
    assert label and int(label.group(1)) > 1, iwae_label
    (iwae_metric,) = [m for m in at.metric if m.label == iwae_label]
    assert re.fullmatch(r"over [\d,]+ test images", iwae_metric.proto.help)  # how many test images it covers
    assert elbo < 0 and float(card[iwae_label]) >= elbo  # the importance-weighted bound is tighter
    used, total = card["Active units"].split(" / ")
    assert total == "16" and 0 < int(used) <= 16
    assert len(at.get("arrow_line_chart")) + len(at.get("vega_lite_chart")) >= 1  # the training curve
    assert len(image_urls(at)) == 1  # the grid of samples
    assert at.slider(key="home_temperature").value == 1.0
    options = at.selectbox(key="model_picker").options
    assert options[0] == DEFAULT_CHECKPOINT and "moons-ae" in options
    assert any(e.label == "What am I seeing?" for e in at.expander)


def test_the_decoder_can_be_downloaded_as_onnx(monkeypatch):
    """The button exports only when clicked (a deferred callable): its file is the decoder, run here by ONNX Runtime."""
    import numpy as np
    import onnxruntime as ort
    import torch
    from streamlit.runtime.media_file_manager import MediaFileManager

    deferred = []
    real = MediaFileManager.add_deferred

    def spy(self, data_callable, mimetype, coordinates, file_name=None, **kw):
        deferred.append((data_callable, file_name))
        return real(self, data_callable, mimetype, coordinates, file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", spy)
    at = home()
    (button,) = [b for b in at.get("download_button") if b.key == "home_download_onnx"]
    assert button.proto.label == "Download decoder (ONNX)" and button.proto.deferred_file_id
    assert any('takes "z", float32 (N, 16)' in c.value and '"x", float32 (N, 1, 28, 28)' in c.value for c in at.caption)
    ((build, file_name),) = deferred
    assert file_name == f"{DEFAULT_CHECKPOINT}-decoder.onnx"
    session = ort.InferenceSession(build(), providers=["CPUExecutionProvider"])
    z = torch.randn(3, 16, generator=torch.Generator().manual_seed(0))
    (x,) = session.run(["x"], {"z": z.numpy()})
    assert x.shape == (3, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    assert np.isfinite(x).all()


def test_temperature_changes_the_samples_and_back():
    at = home()
    first = image_urls(at)
    at.run()
    assert image_urls(at) == first  # a plain rerun draws the same samples (fixed seed)
    at.slider(key="home_temperature").set_value(0.3).run()
    no_exception(at)
    cooler = image_urls(at)
    assert len(cooler) == 1 and cooler != first
    at.slider(key="home_temperature").set_value(1.0).run()
    assert image_urls(at) == first


def test_resample_draws_new_samples():
    at = home()
    first = image_urls(at)
    at.button(key="home_resample").click().run()
    no_exception(at)
    second = image_urls(at)
    assert len(second) == 1 and second != first
    assert at.session_state["home_seed"] == 1
    at.button(key="home_resample").click().run()
    assert image_urls(at) not in (first, second)


def test_picking_another_model_changes_the_card():
    at = home()
    before, urls = metrics(at), image_urls(at)
    at.selectbox(key="model_picker").set_value("digits-vae").run()
    no_exception(at)
    assert not at.error
    card = metrics(at)
    assert card != before
    assert card["Data set"] == "digits" and card["Latent size"] == "8"
    assert at.subheader[0].value == "Model card · digits-vae"
    assert at.session_state["model_choice"] == "digits-vae"  # remembered across pages
    assert image_urls(at) != urls
    assert not math.isclose(float(card["Test ELBO (nats)"]), float(before["Test ELBO (nats)"]))

    at.selectbox(key="model_picker").set_value("moons-ae").run()
    no_exception(at)
    card = metrics(at)
    assert card["Data set"] == "moons" and card["Kind"] == "AE"


def test_an_ae_card_shows_only_what_an_ae_has():
    """No β, ELBO, IWAE, active units nor prior samples: the reconstruction term, and decoded N(0, I) codes
    captioned as what they are."""
    at = home(model_choice="moons-ae")
    assert not at.error
    card = metrics(at)
    assert card["Kind"] == "AE" and float(card["Test log p(x|ẑ) (nats)"]) < 0
    assert not [k for k in card if any(w in k for w in ("β", "ELBO", "IWAE", "Active units"))], card
    assert [s.value for s in at.subheader] == ["Model card · moons-ae", "Decodings of N(0, I) codes"]
    assert any("An AE has no prior" in c.value and "never trained to decode" in c.value for c in at.caption)
    [chart] = at.get("arrow_line_chart") or at.get("vega_lite_chart")
    raw = chart.proto.SerializeToString()  # the series' names are in its Arrow data, as UTF-8
    assert "test −log p(x|ẑ)".encode() in raw and b"ELBO" not in raw
    assert len(image_urls(at)) == 1


@pytest.mark.parametrize("name, caveat", [("moons-vae", True), ("mnist-vae-conv", False)])
def test_a_grey_bernoulli_model_says_its_likelihood_is_not_a_density(name, caveat):
    """moons-vae's Bernoulli decoder scores grey images; mnist-vae-conv's scores binarized ones."""
    if not (ROOT / "checkpoints" / f"{name}.safetensors").exists():
        pytest.skip(f"{name} is not committed")
    at = home(model_choice=name)
    notes = [c.value for c in at.caption if "Bernoulli likelihood on grey" in c.value]
    assert len(notes) == (1 if caveat else 0), notes
    if caveat:
        assert "bounds no probability" in notes[0]


def test_a_stale_choice_falls_back_to_the_default():
    at = home(model_choice="deleted-run (trained here)")
    assert not at.error
    assert at.selectbox(key="model_picker").value == DEFAULT_CHECKPOINT
    assert metrics(at)["Data set"] == "moons"


# Pages that need no checkpoint (and have no model picker).
NO_MODEL = {"pages/1_Train.py", "pages/7_Mixtures.py"}
# What each page must show on the default model with nothing chosen yet.
SHOWS = {
    "app.py": {"images"},  # samples from the prior
    "pages/2_Latent_sliders.py": {"images"},  # the decoded code
    "pages/3_Interpolate.py": {"images", "chart"},  # the rows and the distance chart
    "pages/4_Latent_map.py": {"chart"},  # the map
    "pages/5_Reconstruct.py": {"prompt"},  # nothing to score yet: it says how to start
    "pages/6_Compare.py": {"images", "chart"},  # the β sweep side by side and the rate–distortion plot
    "pages/7_Mixtures.py": {"chart"},  # a finite and an infinite mixture of Gaussians, no checkpoint needed
}


@pytest.mark.parametrize("page", [pytest.param(p, marks=pytest.mark.slow) if "Mixtures" in p else p for p in PAGES])
def test_every_page_opened_directly_works_with_an_empty_session(page):
    at = AppTest.from_file(str(ROOT / page), default_timeout=180)
    assert "model_choice" not in at.session_state  # nothing chosen before
    at.run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert len(at.title) == 1
    if page not in NO_MODEL:  # every model page picks the default checkpoint
        assert at.session_state["model_choice"] == DEFAULT_CHECKPOINT
        assert at.selectbox(key="model_picker").value == DEFAULT_CHECKPOINT
    if page != "pages/1_Train.py":
        shown = {
            "images": bool(image_urls(at)),
            "chart": bool(at.get("plotly_chart")) or "map_live" in {e.key for e in at.get("bidi_component")},
            "prompt": any("Upload one or more images" in i.value for i in at.info),
        }
        assert {k for k, v in shown.items() if v} >= SHOWS[page], shown


@pytest.mark.parametrize("page", PAGES)
def test_every_page_without_any_checkpoint_says_so(page, tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setenv("VAE_TRAINED_DIR", str(tmp_path / "trained"))
    at = AppTest.from_file(str(ROOT / page), default_timeout=180)
    at.run()
    no_exception(at)
    if page in NO_MODEL:
        assert not at.error, [e.value for e in at.error]
    else:
        assert [e.value for e in at.error] == [
            "No checkpoint found in checkpoints/. Train one on the Train page or upload one."
        ]


def test_a_partial_iwae_says_how_many_test_images_it_covers():
    def script() -> None:
        import streamlit as st

        from ui.model_card import vae_metrics

        cols = st.grid(5)
        vae_metrics(
            cols,
            {"beta": 1, "latent_dim": 2},
            {"elbo": -91.0, "iwae": -85.0, "iwae_k": 5000, "iwae_n": 2000, "n": 10000},
        )
        vae_metrics(
            cols,
            {"beta": 1, "latent_dim": 2},
            {"elbo": -91.0, "iwae": -85.5, "iwae_k": 5000, "iwae_n": 10000, "n": 10000},
        )

    at = AppTest.from_function(script).run()
    iwae = [m for m in at.metric if m.label.startswith("Test IWAE")]
    assert [m.label for m in iwae] == ["Test IWAE k=5000"] * 2  # short labels: a metric cuts long ones
    helps = [m.proto.help for m in iwae]
    assert helps == ["IWAE over the first 2,000 of 10,000 test images.", "over 10,000 test images"]


def test_the_navigation_starts_with_home_and_keeps_every_pages_url(monkeypatch):
    """The sidebar's first entry reads "Home" (not the entry file's name, "app"); each page keeps the URL the
    pages/ folder gave it."""
    import streamlit as st

    listed = []

    class Nav:
        def run(self) -> None:
            pass

    monkeypatch.setattr(st, "navigation", lambda pages, **kw: listed.extend(pages) or Nav())
    at = AppTest.from_file(HOME, default_timeout=60).run()
    no_exception(at)
    assert [p.title for p in listed][:1] == ["Home"] and listed[0].url_path == ""  # the default page: /
    assert [p.url_path for p in listed[1:]] == [re.sub(r"^\d+_", "", Path(p).stem) for p in PAGES[1:]]
    assert "Latent sliders" in [p.title for p in listed]


def test_an_uploaded_checkpoint_is_what_the_picker_names_and_the_card_shows():
    """The sidebar picker follows the model the page shows: after an upload it names the upload at once (it
    named the model picked before until the next page change)."""
    data = (ROOT / "checkpoints" / "moons-ae.safetensors").read_bytes()
    at = home()
    assert at.selectbox(key="model_picker").value == DEFAULT_CHECKPOINT
    at.file_uploader(key="ckpt_upload").set_value(("mine.safetensors", data, "application/octet-stream")).run()
    no_exception(at)
    assert at.session_state["model_choice"] == "upload:mine.safetensors"
    assert at.selectbox(key="model_picker").value == "upload:mine.safetensors"
    assert at.subheader[0].value == "Model card · mine.safetensors" and metrics(at)["Kind"] == "AE"
    at.selectbox(key="model_picker").set_value("digits-vae").run()  # and back to a file: the picker leads again
    no_exception(at)
    assert at.session_state["model_choice"] == "digits-vae" and metrics(at)["Data set"] == "digits"


def test_the_likelihood_fits_its_cell_and_says_binarized_in_its_tooltip():
    """The card cut "bernoulli (binarized)" to "bernoulli…": the value is one word, the rest in help and caption."""
    if not (ROOT / "checkpoints" / "mnist-vae-conv.safetensors").exists():
        pytest.skip("mnist-vae-conv is not committed")
    at = home(model_choice="mnist-vae-conv")
    (lik,) = [m for m in at.metric if m.label == "Likelihood"]
    assert lik.value == "bernoulli" and "binarized" in lik.proto.help
    assert any("binarized" in c.value and "-d code" in c.value for c in at.caption)


def test_the_loss_chart_spans_the_losses_and_drops_values_vega_cannot_draw():
    """From 0 the curves were flat lines (ticks 0 and 200 only); a NaN epoch gave Vega an infinite extent."""
    import json

    from ui.model_card import loss_rows, loss_spec

    hist = [{"epoch": 1, "loss": 300.0, "test_elbo": -250.0}, {"epoch": 2, "loss": float("nan"), "test_elbo": None}]
    hist.append({"epoch": 3, "loss": 150.0, "test_elbo": float("-inf")})
    rows = loss_rows(hist, is_ae=False)
    assert [(r["epoch"], r["series"]) for r in rows] == [(1, "train loss"), (1, "test −ELBO"), (3, "train loss")]
    y = loss_spec(rows)["encoding"]["y"]["scale"]
    assert y["zero"] is False and 140 < y["domain"][0] < 150 and 300 < y["domain"][1] < 310
    (chart,) = home().get("vega_lite_chart")
    spec = json.loads(chart.proto.spec)
    lo, hi = spec["encoding"]["y"]["scale"]["domain"]
    assert lo > 100 and hi < 400  # moons-vae's losses run from about 320 down to about 154 nats
