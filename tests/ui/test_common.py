"""ui.common's upload widget under Streamlit's AppTest (kept files, a cap on their number, size limits) and its
data loading without MNIST's files."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest
from vae_helpers import no_exception


def _uploads_page() -> None:
    import streamlit as st

    from ui.common import upload_images

    multiple = st.session_state.get("multiple", True)
    files = upload_images("Images", key="up", multiple=multiple, max_files=2, purpose="scored")
    st.write(f"kept: {[name for name, _ in files]}")


def kept(at: AppTest) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("kept:"))


def test_upload_images_keeps_files_caps_their_number_and_accepts_image_suffixes():
    at = AppTest.from_function(_uploads_page, default_timeout=60)
    at.run()
    no_exception(at)
    widget = at.file_uploader(key="up")
    assert widget.accept_multiple_files and {".png", ".jpg", ".tiff"} <= set(widget.allowed_type)
    assert kept(at) == "kept: []"
    widget.set_value([(f"{c}.png", b"x" * 10, "image/png") for c in "abc"]).run()
    no_exception(at)
    assert kept(at) == "kept: ['a.png', 'b.png']"
    assert [w.value for w in at.warning] == ["3 files uploaded: only the first 2 are scored."]


def test_upload_images_refuses_files_past_the_total_size(monkeypatch):
    import vae.images

    # A 15-byte budget instead of 100 MB: limit_total's default is bound when it is defined.
    monkeypatch.setattr(vae.images.limit_total, "__defaults__", (15,))
    at = AppTest.from_function(_uploads_page, default_timeout=60)
    at.run()
    at.file_uploader(key="up").set_value([("a.png", b"x" * 10, "image/png"), ("b.png", b"y" * 10, "image/png")]).run()
    no_exception(at)
    assert kept(at) == "kept: ['a.png']"
    assert len(at.error) == 1 and at.error[0].value.startswith("b.png: skipped")


def test_a_single_upload():
    at = AppTest.from_function(_uploads_page, default_timeout=60)
    at.session_state["multiple"] = False
    at.run()
    assert not at.file_uploader(key="up").accept_multiple_files
    at.file_uploader(key="up").upload("one.png", b"x", "image/png").run()
    no_exception(at)
    assert kept(at) == "kept: ['one.png']"


def test_mnist_without_its_files_loads_the_shipped_test_set_and_names_no_stand_in(tmp_path):
    from ui.common import load_data

    data, note = load_data("mnist", str(tmp_path), 28, 1)
    assert data is not None and data.name == "mnist" and len(data.test_x) == 10_000 and data.n_train == 0
    assert note == data.note and note.startswith("MNIST's 10,000 test digits come from the copy shipped")
    assert "stand in" not in note and "scikit-learn" not in note


def test_fashion_mnist_without_its_files_says_what_is_missing(tmp_path):
    from ui.common import load_data

    data, note = load_data("fashion-mnist", str(tmp_path), 28, 1)
    assert data is None and note.startswith("The data set of this model cannot be loaded: fashion-mnist is not in")
    assert "FashionMNIST" in note and "t10k-images-idx3-ubyte" in note


def _picker_page() -> None:
    import streamlit as st

    from ui.common import page_header, pick_model

    active = pick_model() if st.session_state.get("needs_model", True) else page_header("Picker", "-", model=False)
    st.write(f"shown: {active.name if active is not None else None}")


def shown(at: AppTest) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("shown:"))


def test_the_picker_names_the_model_the_page_shows_when_something_else_chose_it():
    """Train's "Use this model" (or an upload) sets the session's model: the sidebar's picker follows at once,
    instead of naming the model picked before until the next page change."""
    at = AppTest.from_function(_picker_page, default_timeout=120).run()
    no_exception(at)
    assert at.selectbox(key="model_picker").value == "moons-vae" and shown(at) == "shown: moons-vae"
    at.session_state["model_choice"] = "digits-vae"
    at.run()
    no_exception(at)
    assert shown(at) == "shown: digits-vae"
    assert at.selectbox(key="model_picker").value == "digits-vae"
    at.selectbox(key="model_picker").set_value("moons-ae").run()  # and the picker still picks
    assert shown(at) == "shown: moons-ae" and at.session_state["model_choice"] == "moons-ae"


def test_a_page_that_needs_no_model_gets_the_header_without_a_picker():
    at = AppTest.from_function(_picker_page, default_timeout=60)
    at.session_state["needs_model"] = False
    at.run()
    no_exception(at)
    assert [t.value for t in at.title] == ["Picker"] and shown(at) == "shown: None"
    assert not at.selectbox and not at.error
