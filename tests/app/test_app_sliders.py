"""The Latent sliders page under Streamlit's AppTest: sliders decode live, start points, the traversal."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest
from vae_helpers import no_exception, run_page

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "2_Latent_sliders.py")
D = 16  # the latent size of the default moons-vae

pytestmark = pytest.mark.skipif(
    not (ROOT / "checkpoints" / "moons-vae.safetensors").exists(), reason="the moons-vae checkpoint is not committed"
)


def images(at: AppTest) -> dict[str, str]:
    """Caption -> URL; the URL is a hash of the image's bytes, so it changes when the image does."""
    return {i.caption: i.url for img in at.get("image") for i in img.proto.imgs}


def decoded(at: AppTest) -> str:
    return images(at)["decoded mean of p(x|z)"]


def traversal_image(at: AppTest) -> tuple[str, str]:
    (item,) = [(c, u) for c, u in images(at).items() if c != "decoded mean of p(x|z)"]
    return item


def z_values(at: AppTest) -> list[float]:
    return [at.slider(key=f"z_{j}").value for j in range(D)]


def log_density(at: AppTest) -> float:
    (cap,) = [c.value for c in at.caption if c.value.startswith("log N(z; 0, I) = ")]
    return float(cap.removeprefix("log N(z; 0, I) = ").removesuffix(" nats"))


@pytest.fixture
def app() -> AppTest:
    return run_page(PAGE)


def test_page_starts_at_the_prior_mean(app):
    assert not app.error
    assert z_values(app) == [0.0] * D
    sliders = [s.key for s in app.slider if s.key.startswith("z_")]
    assert sorted(sliders) == sorted(f"z_{j}" for j in range(D))
    assert all(s.min == -4.0 and s.max == 4.0 for s in app.slider if s.key.startswith("z_"))
    assert all(re.match(r"z\d+ +· +KL \d", s.label) for s in app.slider if s.key.startswith("z_"))  # KL per dim
    assert app.radio(key="sl_start").options == ["prior mean", "random prior sample", "encoding of a test image"]
    assert log_density(app) == pytest.approx(-D / 2 * math.log(2 * math.pi), abs=0.01)
    assert traversal_image(app)[0] == "-3.0 · -2.2 · -1.5 · -0.8 · +0.0 · +0.8 · +1.5 · +2.2 · +3.0"
    assert any(e.label == "What am I seeing?" for e in app.expander)


def test_moving_a_slider_changes_the_image(app):
    before = images(app)
    app.run()
    assert images(app) == before  # nothing moved: the same image
    first, second = [s.key for s in app.slider if s.key.startswith("z_")][:2]  # most informative first
    app.slider(key=second).set_value(2.5).run()
    no_exception(app)
    assert app.slider(key=second).value == 2.5
    assert decoded(app) != before["decoded mean of p(x|z)"]
    assert traversal_image(app)[1] != traversal_url(before)  # the traversal is around the new code
    assert log_density(app) == pytest.approx(-(2.5**2) / 2 - D / 2 * math.log(2 * math.pi), abs=0.01)
    app.slider(key=second).set_value(0.0).run()
    assert images(app) == before

    # The traversal sweeps the most informative dimension, so its own slider leaves the strip alone.
    app.slider(key=first).set_value(-1.0).run()
    no_exception(app)
    assert decoded(app) != before["decoded mean of p(x|z)"]
    assert traversal_image(app)[1] == traversal_url(before)


def traversal_url(imgs: dict[str, str]) -> str:
    (url,) = [u for c, u in imgs.items() if c != "decoded mean of p(x|z)"]
    return url


def test_random_prior_sample_then_prior_mean(app):
    before = decoded(app)
    app.radio(key="sl_start").set_value("random prior sample")
    app.button(key="sl_apply").click().run()
    no_exception(app)
    first = z_values(app)
    assert any(v != 0.0 for v in first)
    assert all(-4.0 <= v <= 4.0 for v in first)
    assert decoded(app) != before
    app.button(key="sl_apply").click().run()  # another sample each time
    second = z_values(app)
    assert second != first and any(v != 0.0 for v in second)
    app.radio(key="sl_start").set_value("prior mean")
    app.button(key="sl_apply").click().run()
    no_exception(app)
    assert z_values(app) == [0.0] * D
    assert decoded(app) == before


def test_start_from_the_encoding_of_a_test_image(app):
    app.radio(key="sl_start").set_value("encoding of a test image").run()
    no_exception(app)
    app.number_input(key="sl_image").set_value(3)
    app.button(key="sl_apply").click().run()
    no_exception(app)
    from ui.common import load_data  # the page's cached data set and checkpoint
    from vae.checkpoint import load_checkpoint

    data, _ = load_data("moons", None, 28, 1)
    model = load_checkpoint(ROOT / "checkpoints" / "moons-vae.safetensors").model
    with torch.no_grad():
        mu = model.encode(data.test_x[3:4]).mean[0].clamp(-4, 4)
    assert z_values(app) == pytest.approx(mu.tolist(), abs=0.006)  # rounded to 2 decimals


def test_traversal_steps_and_dimension(app):
    decoded_before = decoded(app)
    caption, url = traversal_image(app)
    app.slider(key="sl_trav_steps").set_value(5).run()
    no_exception(app)
    caption5, url5 = traversal_image(app)
    assert caption5 == "-3.0 · -1.5 · +0.0 · +1.5 · +3.0"
    assert url5 != url
    assert decoded(app) == decoded_before  # the sliders' image is unchanged
    trav = app.selectbox(key="sl_trav_dim")
    assert len(trav.options) == D
    first_slider = next(s.key for s in app.slider if s.key.startswith("z_"))
    assert trav.value == int(first_slider[2:])  # the most informative dimension by default
    other = next(int(s.key[2:]) for s in app.slider if s.key.startswith("z_") and s.key != first_slider)
    trav.set_value(other).run()
    no_exception(app)
    assert traversal_image(app)[1] != url5


def test_an_autoencoder_shows_code_variances():
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["model_choice"] = "moons-ae"
    at.run()
    no_exception(at)
    if at.selectbox(key="model_picker").value != "moons-ae":
        pytest.skip("the moons-ae checkpoint is not committed")
    assert all(re.match(r"z\d+ +· +var \d", s.label) for s in at.slider if s.key.startswith("z_"))
    before = decoded(at)
    at.slider(key="z_0").set_value(-1.5).run()
    no_exception(at)
    assert decoded(at) != before


def test_a_new_model_resets_the_sliders(app):
    """The page says 'a new model ... resets them': old slider values mean nothing for another model."""
    app.slider(key="z_0").set_value(2.5).run()
    assert app.slider(key="z_0").value == 2.5
    app.selectbox(key="model_picker").set_value("digits-vae").run()
    no_exception(app)
    assert len([s for s in app.slider if s.key.startswith("z_")]) == 8  # digits-vae has 8 dimensions
    assert [app.slider(key=f"z_{j}").value for j in range(8)] == [0.0] * 8
