"""The Reconstruct page under Streamlit's AppTest: uploads, a bad file, the test-image picker."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest
from vae_helpers import moon_png, page_on_model

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "5_Reconstruct.py")

pytestmark = pytest.mark.skipif(
    not (ROOT / "checkpoints" / "moons-vae.safetensors").exists(), reason="the moons-vae checkpoint is not committed"
)


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    return "\n".join(parts)


def blank_png() -> bytes:
    """A blank white page: a very likely image for any of the models, and not one of their data."""
    buf = io.BytesIO()
    Image.new("L", (64, 64), 255).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def app() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    return at


def test_page_renders_without_input(app):
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error
    assert app.file_uploader(key="rc_upload").accept_multiple_files
    assert ".png" in app.file_uploader(key="rc_upload").allowed_type
    assert any("Upload one or more images" in i.value for i in app.info)
    assert any(e.label == "What am I seeing?" for e in app.expander)


def test_upload_good_and_bad(app):
    app.file_uploader(key="rc_upload").set_value(
        [("moon.png", moon_png(), "image/png"), ("bad.png", b"not an image", "image/png")]
    ).run()
    assert not app.exception, [e.value for e in app.exception]
    errors = [e.value for e in app.error]
    assert len(errors) == 1 and errors[0].startswith("bad.png:")
    labels = [m.label for m in app.metric]
    assert "ELBO (nats)" in labels and "KL (nats)" in labels and any(lbl.startswith("IWAE k=") for lbl in labels)
    assert "S(x) percentile among test images" in labels
    elbo = next(m.value for m in app.metric if m.label == "ELBO (nats)")
    assert float(elbo) < 0
    table = app.dataframe[0].value
    assert list(table["file"]) == ["moon.png", "bad.png"]
    assert table["status"].tolist()[0] == "ok" and table["status"].tolist()[1].startswith("bad.png:")
    assert set(table.columns) >= {"ELBO", "KL", "IWAE", "S", "percentile", "verdict", "status"}
    # 4 preprocessing steps, then the model input, its reconstruction, the error map and its colour bar
    assert len(app.get("image")) >= 8


def test_a_blank_page_is_out_of_distribution_and_a_test_image_typical(app):
    """The verdict is the input-complexity test: a blank page's high likelihood does not make it typical."""
    app.file_uploader(key="rc_upload").set_value([("blank.png", blank_png(), "image/png")]).run()
    assert not app.exception, [e.value for e in app.exception]
    warnings = [w.value for w in app.warning]
    assert len(warnings) == 1 and warnings[0].startswith("Out of distribution"), warnings
    assert "generic compressor" in warnings[0]
    app.file_uploader(key="rc_upload").clear()
    app.selectbox(key="rc_example").set_value(3).run()
    assert [s.value for s in app.success if s.value.startswith("Typical")], [s.value for s in app.success]
    app.selectbox(key="rc_example").set_value(None).run()


def test_grey_bernoulli_caveat_is_shown_once(app):
    """moons-vae is a Bernoulli decoder trained on grey images: its scores bound no probability, said once."""
    app.file_uploader(key="rc_upload").set_value(
        [("a.png", moon_png(), "image/png"), ("b.png", blank_png(), "image/png")]
    ).run()
    notes = [i.value for i in app.info if "Bernoulli likelihood on grey" in i.value]
    assert len(notes) == 1 and "bounds no probability" in notes[0]
    app.file_uploader(key="rc_upload").clear()


def test_example_picker(app):
    app.file_uploader(key="rc_upload").clear()
    app.selectbox(key="rc_example").set_value(3).run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error
    assert "ELBO (nats)" in [m.label for m in app.metric]
    assert "test image #3" in "\n".join(e.label for e in app.expander)
    assert not [d for d in app.dataframe if "file" in d.value.columns]  # one image: no summary table


def test_vae_elbo_taken_apart_and_posterior_shown(app):
    """A VAE on a test image: the ELBO's terms, the gap, both Monte Carlo estimates, q(z|x) and its samples."""
    app.file_uploader(key="rc_upload").clear()
    app.selectbox(key="rc_example").set_value(3).run()
    assert app.select_slider(key="rc_mc_l").options == ["1", "10", "100", "1000"]
    app.select_slider(key="rc_mc_l").set_value(10).run()
    assert not app.exception, [e.value for e in app.exception]
    labels = [m.label for m in app.metric]
    assert {"E_q[log p(x|z)] (nats)", "KL(q(z|x) ‖ p(z)) (nats)", "IWAE − ELBO (nats)"} <= set(labels)
    assert "KL(q(z|x) ‖ p(z|x))" in texts(app)
    table = next(d.value for d in app.dataframe if "estimate" in d.value.columns)
    assert len(table) == 2 and (table["std"] > 0).all()
    elbo = float(next(m.value for m in app.metric if m.label == "ELBO (nats)").replace(",", ""))
    assert (abs(table["mean"] - elbo) < 5).all()  # both estimate the same ELBO
    charts = [c for c in app.get("plotly_chart") if "rc_posterior_0" in (c.proto.id or "")]
    assert len(charts) == 1
    images = " ".join(str(img.proto) for img in app.get("image"))
    assert "decoded \\316\\274" in images or "decoded μ" in images
    assert "z ~ q #8" in images  # the row of 8 decoded samples z ~ q(z|x)
    app.selectbox(key="rc_example").set_value(None).run()


def test_autoencoder_shows_reconstruction_only():
    at = page_on_model(PAGE, "moons-ae")
    at.file_uploader(key="rc_upload").upload("moon.png", moon_png(), "image/png").run()
    assert not at.exception, [e.value for e in at.exception]
    labels = [m.label for m in at.metric]
    assert "log p(x|ẑ) (nats)" in labels and "ELBO (nats)" not in labels
    assert "no ELBO" in texts(at)
    assert "S(x) percentile among test images" in labels
    assert "−log₂ p(x|ẑ)" in texts(at)  # its typicality uses the reconstruction's bits, named as such
    # no q(z|x): no Monte Carlo estimates, no gap, no posterior chart
    assert not [w for w in at.select_slider if w.key == "rc_mc_l"]
    assert "IWAE − ELBO (nats)" not in labels and "E_q[log p(x|z)] (nats)" not in labels
    assert not [c for c in at.get("plotly_chart") if "rc_posterior" in (c.proto.id or "")]


def test_without_a_test_set_uploads_still_work(tmp_path, monkeypatch, tiny_model):
    from vae.checkpoint import save

    save(tmp_path / "lonely.safetensors", tiny_model, dataset={"name": "folder:/no/such/folder", "style": "plain"})
    monkeypatch.setenv("VAE_CHECKPOINT_DIR", str(tmp_path))
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("without the typicality test" in i.value for i in at.info)
    at.file_uploader(key="rc_upload").upload("moon.png", moon_png(), "image/png").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error
    assert "ELBO (nats)" in [m.label for m in at.metric]
    assert "S(x) percentile among test images" not in [m.label for m in at.metric]
    assert "No typicality verdict" in texts(at)
