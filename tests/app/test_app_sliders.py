"""The Latent sliders page under Streamlit's AppTest: the live views' Python side (what they are mounted
with, what a release does), "Start from", the traversals, an AE's ranges and wording, and the server-side
sliders where the browser cannot decode. AppTest runs no JavaScript: tests/e2e/test_live_sliders.py does."""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import pytest
import torch
from live_components import send, view_data
from streamlit.testing.v1 import AppTest
from vae_helpers import no_exception, page_on_model, run_page

from ui.state import dim_label

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "2_Latent_sliders.py")
D = 16  # the latent size of the default moons-vae
GRID = "one row per active dimension"

pytestmark = pytest.mark.skipif(
    not (ROOT / "checkpoints" / "moons-vae.safetensors").exists(), reason="the moons-vae checkpoint is not committed"
)


def k(at: AppTest, name: str) -> str:
    """The key of the one widget ``name`` scoped to the shown model (ui.state.scoped: ``name@model``)."""
    widgets = [*at.radio, *at.number_input, *at.selectbox, *at.slider]
    (key,) = {w.key for w in widgets if w.key and w.key.startswith(f"{name}@")}
    return key


def view(at: AppTest, key: str) -> dict:
    """The ``data`` a live view (component key ``sl_live`` or ``sl_pad``) was mounted with."""
    return view_data(at, key)


def release(at: AppTest, key: str, z: list[float]) -> AppTest:
    """What the browser sends when the mouse is released on a view: a trigger carrying the code."""
    return send(at, key, trigger=("released", {"z": z}))


def images(at: AppTest) -> dict[str, str]:
    """Caption -> URL; the URL is a hash of the image's bytes, so it changes when the image does."""
    return {i.caption: i.url for img in at.get("image") for i in img.proto.imgs}


def strip_of(at: AppTest) -> tuple[str, str]:
    """(caption, url) of the one-dimension traversal."""
    (item,) = [(c, u) for c, u in images(at).items() if re.match(r"^[-+]\d", c)]
    return item


def grid_of(at: AppTest) -> str:
    (url,) = [u for c, u in images(at).items() if c.startswith(GRID)]
    return url


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def log_density(at: AppTest) -> float:
    (cap,) = [c for c in captions(at) if c.startswith("log N(z; 0, I) = ")]
    return float(cap.removeprefix("log N(z; 0, I) = ").removesuffix(" nats"))


def server_code(at: AppTest) -> str:
    (cap,) = [c for c in captions(at) if c.startswith("On the server")]
    return cap


def start(at: AppTest) -> list[float]:
    return view(at, "sl_live")["start"]


@pytest.fixture
def app() -> AppTest:
    return run_page(PAGE)


def test_the_live_sliders_are_mounted_in_kl_order(app):
    from ui.common import load_data
    from vae.checkpoint import load_checkpoint
    from vae.evaluate import kl_by_dimension

    data = view(app, "sl_live")
    assert data["module_url"] == "/app/static/live/decoder.mjs" and data["model_url"].endswith(".onnx")
    assert data["dim"] == D and data["shape"] == [1, 28, 28] and data["start"] == [0.0] * D
    model = load_checkpoint(ROOT / "checkpoints" / "moons-vae.safetensors").model
    kl = kl_by_dimension(model, load_data("moons", None, 28, 1)[0].test_x[:2000])
    shown = [d["j"] for d in data["dims"]] + [d["j"] for d in data["folded"]]
    assert shown == torch.argsort(kl, descending=True, stable=True).tolist()  # most informative first
    assert all(kl[d["j"]] > 0.01 for d in data["dims"]) and all(kl[d["j"]] <= 0.01 for d in data["folded"])
    assert data["fold_note"] == f"{len(data['folded'])} inactive dimensions (KL ≤ 0.01 nats: the decoder ignores them)"
    assert all(re.match(r"z\d+ +· +KL \d\.\d\d nats$", d["label"]) for d in data["dims"])
    # One numbering of latent dimensions (ui.state.dim_label): z1 ... zD, as on Reconstruct and in the math.
    assert all(d["label"].startswith(f"z{d['j'] + 1} ") for d in data["dims"] + data["folded"])
    assert sorted(int(d["label"].split()[0][1:]) for d in data["dims"] + data["folded"]) == list(range(1, D + 1))
    (trav,) = [s for s in app.selectbox if s.key.startswith("sl_trav_dim@")]
    assert "z1 (KL" in " ".join(trav.options) and not [o for o in trav.options if o.startswith("z0 ")]
    assert all((d["lo"], d["hi"], d["step"]) == (-4.0, 4.0, 0.05) for d in data["dims"] + data["folded"])
    assert data["size"] >= 320 and data["caption"] == "decoded mean of p(x|z)"
    assert not [s for s in app.slider if s.key.startswith("z_")]  # no server-side sliders
    pad = view(app, "sl_pad")
    assert (pad["x"]["j"], pad["y"]["j"]) == (data["dims"][0]["j"], data["dims"][1]["j"])
    assert pad["token"] == data["token"] and pad["start"] == data["start"]
    starts = app.radio(key=k(app, "sl_start")).options
    assert starts == ["prior mean", "random prior sample", "encoding of a test image"]
    assert log_density(app) == pytest.approx(-D / 2 * math.log(2 * math.pi), abs=0.01)
    assert strip_of(app)[0] == "-3.0 · -2.2 · -1.5 · -0.8 · +0.0 · +0.8 · +1.5 · +2.2 · +3.0"
    assert grid_of(app)
    assert any(e.label == "What am I seeing?" for e in app.expander)


def test_a_release_sends_the_code_and_re_mounts_nothing(app):
    mounted = view(app, "sl_live"), view(app, "sl_pad")
    before = images(app)
    first = mounted[0]["dims"][0]["j"]
    z = [0.0] * D
    z[first] = 2.5
    release(app, "sl_live", z)
    no_exception(app)
    assert (view(app, "sl_live"), view(app, "sl_pad")) == mounted  # same data: the views stay mounted
    assert log_density(app) == pytest.approx(-(2.5**2) / 2 - D / 2 * math.log(2 * math.pi), abs=0.01)
    assert f"{dim_label(first)} = +2.50" in server_code(app)
    assert grid_of(app) != grid_of_before(before)  # the traversals are around the new code
    app.run()  # a rerun without a release keeps the code
    assert f"{dim_label(first)} = +2.50" in server_code(app)
    release(app, "sl_live", [1.0, 2.0])  # a malformed code is ignored
    no_exception(app)
    assert f"{dim_label(first)} = +2.50" in server_code(app)


def grid_of_before(imgs: dict[str, str]) -> str:
    (url,) = [u for c, u in imgs.items() if c.startswith(GRID)]
    return url


def test_the_pad_plane_and_its_release(app):
    order = [d["j"] for d in view(app, "sl_live")["dims"]]
    app.selectbox(key=k(app, "sl_pad_y")).set_value(order[2]).run()
    no_exception(app)
    pad = view(app, "sl_pad")
    assert (pad["x"]["j"], pad["y"]["j"]) == (order[0], order[2])
    assert (pad["x"]["lo"], pad["x"]["hi"]) == (-4.0, 4.0)
    z = [0.0] * D
    z[order[0]], z[order[2]] = -1.25, 0.75
    release(app, "sl_pad", z)
    no_exception(app)
    x, y = dim_label(order[0]), dim_label(order[2])
    assert server_code(app) == f"On the server (sent on release): {x} = -1.25, {y} = +0.75"
    app.selectbox(key=k(app, "sl_pad_y")).set_value(order[0]).run()  # the same dimension twice: no pad
    no_exception(app)
    assert not [c for c in app.get("bidi_component") if c.key == "sl_pad"]
    assert any("two different dimensions" in w.value for w in app.warning)


def test_start_from_applies_at_once(app):
    token = view(app, "sl_live")["token"]
    app.radio(key=k(app, "sl_start")).set_value("random").run()  # no Apply button
    no_exception(app)
    first = start(app)
    assert any(v != 0.0 for v in first) and all(-4.0 <= v <= 4.0 for v in first)
    assert view(app, "sl_live")["token"] != token  # a new start re-mounts the views at it
    assert view(app, "sl_pad")["start"] == first
    app.button(key="sl_resample").click().run()  # another sample
    assert start(app) != first
    app.radio(key=k(app, "sl_start")).set_value("mean").run()
    assert start(app) == [0.0] * D
    app.radio(key=k(app, "sl_start")).set_value("image").run()
    app.number_input(key=k(app, "sl_image")).set_value(3).run()
    no_exception(app)
    from ui.common import load_data
    from vae.checkpoint import load_checkpoint

    data, _ = load_data("moons", None, 28, 1)
    model = load_checkpoint(ROOT / "checkpoints" / "moons-vae.safetensors").model
    with torch.no_grad():
        mu = model.encode(data.test_x[3:4]).mean[0].clamp(-4, 4)
    assert start(app) == pytest.approx(mu.tolist(), abs=1e-5)


def test_traversal_steps_dimension_and_grid(app):
    caption, url = strip_of(app)
    grid = grid_of(app)
    app.slider(key="sl_trav_steps").set_value(5).run()
    no_exception(app)
    caption5, url5 = strip_of(app)
    assert caption5 == "-3.0 · -1.5 · +0.0 · +1.5 · +3.0"
    assert url5 != url and grid_of(app) != grid
    (trav,) = [s for s in app.selectbox if s.key.startswith("sl_trav_dim@")]
    order = [d["j"] for d in view(app, "sl_live")["dims"]]
    assert len(trav.options) == D and trav.value == order[0]  # the most informative dimension by default
    trav.set_value(order[1]).run()
    no_exception(app)
    assert strip_of(app)[1] != url5
    assert any(c.startswith(GRID) and "-3 to +3" in c for c in images(app))


def test_a_new_model_gets_its_own_selectors_and_start(app):
    (old,) = [s.key for s in app.selectbox if s.key.startswith("sl_trav_dim@")]
    app.selectbox(key=old).set_value(view(app, "sl_live")["dims"][1]["j"]).run()
    app.radio(key=k(app, "sl_start")).set_value("random").run()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # e.g. torch's, from a format_func given a stale value
        app.selectbox(key="model_picker").set_value("digits-vae").run()
    no_exception(app)
    (new,) = [s for s in app.selectbox if s.key.startswith("sl_trav_dim@")]
    assert new.key != old and len(new.options) == 8  # digits-vae has 8 dimensions
    assert not [o for o in new.options if o.startswith("z0 ") or o.startswith("z9 ")]  # z1 ... z8
    assert new.value == view(app, "sl_live")["dims"][0]["j"]
    assert start(app) == [0.0] * 8 and app.radio(key=k(app, "sl_start")).value == "mean"


def test_an_autoencoder_gets_its_codes_range_and_no_prior_wording():
    at = page_on_model(PAGE, "moons-ae")
    from ui.common import load_data
    from vae.checkpoint import load_checkpoint
    from vae.evaluate import encode_mean

    model = load_checkpoint(ROOT / "checkpoints" / "moons-ae.safetensors").model
    codes = encode_mean(model, load_data("moons", None, 28, 1)[0].test_x)
    data = view(at, "sl_live")
    for d in data["dims"] + data["folded"]:
        lo, hi = float(codes[:, d["j"]].min()), float(codes[:, d["j"]].max())
        assert d["lo"] < lo and d["hi"] > hi and d["hi"] - d["lo"] < 1.3 * (hi - lo)
        assert re.match(r"z\d+ +· +var \d", d["label"])
    assert any(d["lo"] < -5 for d in data["dims"])  # not the prior's +-4
    assert data["start"] == pytest.approx(codes.mean(0).tolist(), abs=1e-4)  # "mean code"
    assert data["caption"] == "decoded image"
    assert at.radio(key=k(at, "sl_start")).options == ["mean code", "random code", "encoding of a test image"]
    texts = [*captions(at), *(m.value for m in at.markdown), *(s.label for s in at.selectbox)]
    texts += [*(o for s in at.selectbox for o in s.options), *(i for i in images(at)), json.dumps(data)]
    for banned in ("KL", "prior", "log N", "N(z; 0, I)", "p(x|z)"):
        assert not [t for t in texts if banned in t], banned


def z_values(at: AppTest, d: int = D) -> list[float]:
    return [at.slider(key=f"z_{j}").value for j in range(d)]


def test_without_the_runtime_the_server_sliders_are_back(no_runtime):  # tests/app/conftest.py
    at = run_page(PAGE)
    assert not at.get("bidi_component")
    assert any(c.startswith("Live decoding is off here: the in-browser runtime is missing") for c in captions(at))
    sliders = [s for s in at.slider if s.key.startswith("z_")]
    assert sorted(s.key for s in sliders) == sorted(f"z_{j}" for j in range(D))
    assert all((s.min, s.max) == (-4.0, 4.0) for s in sliders) and z_values(at) == [0.0] * D
    before = images(at)["decoded mean of p(x|z)"]
    first = sliders[0].key
    at.slider(key=first).set_value(2.5).run()
    no_exception(at)
    assert images(at)["decoded mean of p(x|z)"] != before
    assert log_density(at) == pytest.approx(-(2.5**2) / 2 - D / 2 * math.log(2 * math.pi), abs=0.01)
    at.radio(key=k(at, "sl_start")).set_value("random").run()  # applies at once here too
    assert any(v != 0.0 for v in z_values(at)) and at.slider(key=first).value != 2.5
    at.selectbox(key="model_picker").set_value("digits-vae").run()
    no_exception(at)
    assert len([s for s in at.slider if s.key.startswith("z_")]) == 8 and z_values(at, 8) == [0.0] * 8


def test_a_browser_that_cannot_run_the_decoder_falls_back(app):
    send(app, "sl_live", trigger=("failed", "no WebAssembly"))
    no_exception(app)
    assert not app.get("bidi_component")
    assert any("the browser could not run the decoder (no WebAssembly)" in c for c in captions(app))
    assert len([s for s in app.slider if s.key.startswith("z_")]) == D


def posterior(index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """mu and sigma (D,) of q(z|x) for the moons-vae's test image ``index``."""
    from ui.common import load_data
    from vae.checkpoint import load_checkpoint

    data, _ = load_data("moons", None, 28, 1)
    model = load_checkpoint(ROOT / "checkpoints" / "moons-vae.safetensors").model
    with torch.no_grad():
        q = model.encode(data.test_x[index : index + 1])
    return q.mean[0], q.std[0]


def test_an_encoded_start_shows_each_band_and_draws_from_the_posterior(app):
    assert "sl_draw" not in [b.key for b in app.button]
    assert not any("sigma" in d for d in view(app, "sl_live")["dims"])  # the prior mean: no band
    app.radio(key=k(app, "sl_start")).set_value("image").run()
    app.number_input(key=k(app, "sl_image")).set_value(3).run()
    no_exception(app)
    mu, sigma = posterior(3)
    data = view(app, "sl_live")
    for d in data["dims"] + data["folded"]:
        j = d["j"]
        assert (d["mu"], d["sigma"]) == pytest.approx((float(mu[j]), float(sigma[j])), abs=1e-5)
        assert d["band"] == f"μ {float(mu[j]):+.2f} ± {float(sigma[j]):.2f}"
    at_mean, token = start(app), data["token"]
    assert at_mean == pytest.approx(mu.clamp(-4, 4).tolist(), abs=1e-5)
    app.button(key="sl_draw").click().run()
    no_exception(app)
    first = start(app)
    assert view(app, "sl_live")["token"] != token and view(app, "sl_pad")["start"] == first  # re-mounted there
    eps = (torch.tensor(first) - mu) / sigma
    assert first != at_mean and eps.abs().max() < 6  # mu + sigma * eps, near the mean
    assert view(app, "sl_live")["dims"] == data["dims"]  # the same band
    app.button(key="sl_draw").click().run()
    assert start(app) != first  # a new seed each click
    app.radio(key=k(app, "sl_start")).set_value("mean").run()
    assert not any("sigma" in d for d in view(app, "sl_live")["dims"])
    assert "sl_draw" not in [b.key for b in app.button]


def test_an_autoencoders_encoded_start_has_no_band_and_no_draw():
    at = page_on_model(PAGE, "moons-ae")
    at.radio(key=k(at, "sl_start")).set_value("image").run()
    no_exception(at)
    data = view(at, "sl_live")
    assert not any("sigma" in d or "band" in d for d in data["dims"] + data["folded"])
    assert "sl_draw" not in [b.key for b in at.button]
    assert any(c.startswith("An autoencoder's code is a point") for c in captions(at))


def test_the_server_sliders_show_the_band_in_their_labels(no_runtime):
    at = run_page(PAGE)
    at.radio(key=k(at, "sl_start")).set_value("image").run()
    at.number_input(key=k(at, "sl_image")).set_value(3).run()
    mu, sigma = posterior(3)
    labels = {s.key: s.label for s in at.slider if s.key.startswith("z_")}
    assert all(labels[f"z_{j}"].endswith(f"μ {float(mu[j]):+.2f} ± {float(sigma[j]):.2f}") for j in range(D))
    before = z_values(at)
    at.button(key="sl_draw").click().run()
    no_exception(at)
    assert z_values(at) != before


def pad_chart(at: AppTest) -> dict:
    """The server pad's plotly figure (its JSON spec)."""
    (chart,) = [c for c in at.get("plotly_chart") if "sl_pad_chart" in c.proto.id]
    return json.loads(chart.proto.spec)


def test_the_server_pad_shows_a_grid_and_the_code(no_runtime):
    at = run_page(PAGE)
    assert not at.get("bidi_component")
    (across,) = [s for s in at.selectbox if s.key.startswith("sl_pad_x@")]
    (up,) = [s for s in at.selectbox if s.key.startswith("sl_pad_y@")]
    i, j = across.value, up.value
    grid, here = pad_chart(at)["data"]
    assert len(grid["x"]) == 81 and min(grid["x"]) == -4.0 and max(grid["y"]) == 4.0
    assert grid["customdata"][0] == [-4.0, 4.0]  # top left: lowest across, highest up
    assert (here["x"], here["y"]) == ([0.0], [0.0])
    at.slider(key=f"z_{i}").set_value(1.5).run()
    at.slider(key=f"z_{j}").set_value(-2.0).run()
    no_exception(at)
    assert [(d["x"], d["y"]) for d in pad_chart(at)["data"]][1] == ([1.5], [-2.0])  # the star follows the sliders
    assert server_code(at) == f"On the server (sent on release): {dim_label(i)} = +1.50, {dim_label(j)} = -2.00"


def test_a_click_on_the_server_pad_moves_both_sliders():
    def script() -> None:
        import streamlit as st

        from services.sliders import Axis
        from ui.sliders import _pad_clicked

        axes = [Axis(-4.0, 4.0, 0.05)] * 3
        st.session_state["sl_pad_chart"] = {"selection": {"points": [{"customdata": [1.234, -9.0]}]}}
        _pad_clicked(2, 0, axes)
        st.write(f"{st.session_state['z_2']} {st.session_state['z_0']}")

    at = AppTest.from_function(script).run()
    no_exception(at)
    assert at.markdown[0].value == "1.25 -4.0"  # onto the slider's steps and into its range


def test_a_model_switch_leaves_no_widget_with_a_value_the_new_model_cannot_have(app):
    """Every widget whose choices depend on the model is keyed by it (ui.state.scoped): after picking test image
    999 of moons and pad / traversal dimensions past digits-vae's 8, digits-vae shows its own defaults."""
    data = view(app, "sl_live")
    far = [d["j"] for d in data["dims"] + data["folded"] if d["j"] >= 8]
    app.selectbox(key=k(app, "sl_pad_y")).set_value(far[0]).run()
    app.selectbox(key=k(app, "sl_trav_dim")).set_value(far[1]).run()
    app.radio(key=k(app, "sl_start")).set_value("image").run()
    app.number_input(key=k(app, "sl_image")).set_value(999).run()
    moons = k(app, "sl_start")
    app.selectbox(key="model_picker").set_value("digits-vae").run()
    no_exception(app)
    assert k(app, "sl_start") != moons and app.radio(key=k(app, "sl_start")).value == "mean"
    for name in ("sl_pad_x", "sl_pad_y", "sl_trav_dim"):
        box = app.selectbox(key=k(app, name))
        assert box.value in range(8), (name, box.value)
    app.radio(key=k(app, "sl_start")).set_value("image").run()
    no_exception(app)
    box = app.number_input(key=k(app, "sl_image"))
    assert box.value == 0 and box.max < 999
    assert len(start(app)) == 8
