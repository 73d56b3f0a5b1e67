"""The Reconstruct page under Streamlit's AppTest: uploads, a bad file, the test-image picker, the verdict,
and widgets scoped to the model (a model switch shows no value the new model cannot have)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest
from vae_helpers import drawn_three, moon_png, page_on_model

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "5_Reconstruct.py")

pytestmark = pytest.mark.skipif(
    not (ROOT / "checkpoints" / "moons-vae.safetensors").exists(), reason="the moons-vae checkpoint is not committed"
)


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    return "\n".join(parts)


ELBO = "ELBO (nats), L = 10"  # the card's ELBO, named with its samples (the bound panel's has more)


def widget(at: AppTest, kind: str, name: str):
    """The one ``kind`` widget (selectbox, select_slider...) whose key is ``name`` scoped to the shown model."""
    found = [w for w in getattr(at, kind) if (w.key or "").startswith(f"{name}@")]
    assert len(found) == 1, [w.key for w in getattr(at, kind)]
    return found[0]


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
    assert ELBO in labels and "KL (nats)" in labels and any(lbl.startswith("IWAE k=") for lbl in labels)
    assert "S(x) percentile among test images" in labels
    elbo = next(m.value for m in app.metric if m.label == ELBO)
    assert float(elbo) < 0
    table = app.dataframe[0].value
    assert list(table["file"]) == ["moon.png", "bad.png"]
    # the message is shown once, above the table; the cell stays short
    assert table["status"].tolist() == ["ok", "not scored (see above)"]
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
    widget(app, "selectbox", "rc_example").set_value(3).run()
    assert [s.value for s in app.success if s.value.startswith("Typical")], [s.value for s in app.success]
    widget(app, "selectbox", "rc_example").set_value(None).run()


def test_a_drawn_digit_on_moons_is_out_of_distribution(app):
    """Issue 22: a hand-drawn 3 on moons-vae was "Typical for this model" while its reconstruction was a moon."""
    app.file_uploader(key="rc_upload").set_value(
        [("digit3.png", drawn_three(), "image/png"), ("moon.png", moon_png(), "image/png")]
    ).run()
    assert not app.exception, [e.value for e in app.exception]
    verdicts = [w.value for w in app.warning if w.value.startswith("Out of distribution")]
    assert len(verdicts) >= 1 and "its reconstruction is not the image" in verdicts[0], verdicts
    table = app.dataframe[0].value
    cell = table["verdict"].tolist()[0]
    assert cell.startswith("OOD") and "x̂ ≠ x" in cell and len(cell) <= 24  # short: nothing to cut off
    assert any("x̂ ≠ x — the reconstruction too far from the image" in c.value for c in app.caption)
    app.file_uploader(key="rc_upload").clear()


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
    widget(app, "selectbox", "rc_example").set_value(3).run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error
    assert ELBO in [m.label for m in app.metric]
    assert "test image #3" in "\n".join(e.label for e in app.expander)
    assert not [d for d in app.dataframe if "file" in d.value.columns]  # one image: no summary table
    assert "Note: a test image is already in the model's format: no preprocessing." in texts(app)


def test_every_note_has_words():
    from services.scoring import NOTES
    from ui.reconstruct import NOTE_TEXT

    assert set(NOTE_TEXT) == set(NOTES)


def test_vae_elbo_taken_apart_and_posterior_shown(app):
    """A VAE on a test image: the ELBO's terms, the gap, both Monte Carlo estimates, q(z|x) and its samples."""
    app.file_uploader(key="rc_upload").clear()
    widget(app, "selectbox", "rc_example").set_value(3).run()
    assert widget(app, "select_slider", "rc_mc_l").options == ["1", "10", "100", "1000"]
    widget(app, "select_slider", "rc_mc_l").set_value(10).run()
    assert not app.exception, [e.value for e in app.exception]
    labels = [m.label for m in app.metric]
    assert {"reconstruction term (nats)", "KL term (nats)", "IWAE − ELBO (nats)"} <= set(labels)
    assert "KL(q(z|x) ‖ p(z|x))" in texts(app)
    # two ELBOs of one image, each named with its samples, and why they differ
    assert "ELBO (L = 10 × 20 repeats = 200 samples)" in texts(app) and "Monte Carlo noise only" in texts(app)
    headings = [m.value for m in app.markdown if m.value.startswith("**The")]
    assert any(r"$q(z\mid x) = \mathcal N" in h for h in headings), headings  # notation rendered as in the panels
    table = next(d.value for d in app.dataframe if "estimate" in d.value.columns)
    assert len(table) == 2 and (table["std"] > 0).all()
    elbo = float(next(m.value for m in app.metric if m.label == ELBO).replace(",", ""))
    assert (abs(table["mean"] - elbo) < 5).all()  # both estimate the same ELBO
    charts = [c for c in app.get("plotly_chart") if "rc_posterior_0" in (c.proto.id or "")]
    assert len(charts) == 1
    images = " ".join(str(img.proto) for img in app.get("image"))
    assert "decoded \\316\\274" in images or "decoded μ" in images
    assert "z ~ q #8" in images  # the row of 8 decoded samples z ~ q(z|x)
    assert "dimensions carry more than 0.01 nats of KL" in texts(app)
    widget(app, "selectbox", "rc_example").set_value(None).run()


def test_a_model_switch_shows_no_value_the_new_model_cannot_have():
    """L = 1000 and a picked moon on moons-vae; on mnist-vae-conv L = 1000 is not offered and the moon is not
    one of its test images: its widgets are its own (scoped), with its defaults; switching back restores them."""
    at = page_on_model(PAGE, "moons-vae")
    widget(at, "select_slider", "rc_mc_l").set_value(1000).run()
    widget(at, "selectbox", "rc_example").set_value(5).run()
    at.selectbox(key="model_picker").set_value("mnist-vae-conv").run()
    assert not at.exception, [e.value for e in at.exception]
    if at.selectbox(key="model_picker").value != "mnist-vae-conv":
        pytest.skip("mnist-vae-conv is not committed")
    mc_l = widget(at, "select_slider", "rc_mc_l")
    assert mc_l.options == ["1", "10", "100"] and mc_l.value in (1, 10, 100)
    assert widget(at, "selectbox", "rc_example").value is None  # no moon carried onto MNIST
    assert not [e for e in at.expander if "full moon" in e.label or "crescent" in e.label]
    at.selectbox(key="model_picker").set_value("moons-vae").run()
    assert widget(at, "select_slider", "rc_mc_l").value == 1000 and widget(at, "selectbox", "rc_example").value == 5


def test_a_shaded_moon_on_mnist_vae_2d_is_out_of_distribution():
    """Issue 22: a moon uploaded to mnist-vae-2d was "Typical for this model"; the page now names the grey-levels
    test and says why (MNIST's strokes are full white, a shaded moon is grey throughout)."""
    from vae.data import load_dataset
    from vae.images import to_pil

    at = page_on_model(PAGE, "mnist-vae-2d")
    moons = load_dataset("moons", need_train=False)
    gibbous = [i for i, y in enumerate(moons.test_y.tolist()) if moons.label_names[y] == "waxing gibbous"][:2]
    files = []
    for i in gibbous:  # two files: the summary table is shown for more than one
        buf = io.BytesIO()
        to_pil(moons.test_x[i]).save(buf, format="PNG")
        files.append((f"moon{i}.png", buf.getvalue(), "image/png"))
    at.file_uploader(key="rc_upload").set_value(files).run()
    assert not at.exception, [e.value for e in at.exception]
    verdicts = [w.value for w in at.warning if w.value.startswith("Out of distribution")]
    assert len(verdicts) == 2 and all("its grey levels are unlike the test images'" in v for v in verdicts), verdicts
    assert "✗ **grey**" in texts(at)
    cells = at.dataframe[0].value["verdict"].tolist()
    assert all(c.startswith("OOD") and "grey" in c and len(c) <= 28 for c in cells), cells
    at.file_uploader(key="rc_upload").clear()
    widget(at, "selectbox", "rc_example").set_value(3).run()
    assert [s.value for s in at.success if s.value.startswith("Typical")], [s.value for s in at.success]


def test_autoencoder_shows_reconstruction_only():
    at = page_on_model(PAGE, "moons-ae")
    at.file_uploader(key="rc_upload").upload("moon.png", moon_png(), "image/png").run()
    assert not at.exception, [e.value for e in at.exception]
    labels = [m.label for m in at.metric]
    assert "log p(x|ẑ) (nats)" in labels and ELBO not in labels
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
    assert ELBO in [m.label for m in at.metric]
    assert "S(x) percentile among test images" not in [m.label for m in at.metric]
    assert "No typicality verdict" in texts(at)
