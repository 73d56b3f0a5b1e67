"""The Latent map page under Streamlit's AppTest: points on the live map (and the PCA inverse it decodes with),
projections, a point picked by a click, uploads, and the plotly map where the browser cannot decode."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from live_components import send, view_data, views
from streamlit.testing.v1 import AppTest
from vae_helpers import figure_points, moon_png, no_exception

from services import maps
from vae.checkpoint import load_checkpoint, save
from vae.config import ModelConfig
from vae.data import PHASE_NAMES
from vae.evaluate import encode_mean
from vae.models import build_model

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "4_Latent_map.py")
N = 100  # points on the map in these tests: t-SNE of 100 codes takes about a second

pytestmark = pytest.mark.skipif(
    not (ROOT / "checkpoints" / "moons-vae.safetensors").exists(), reason="the moons-vae checkpoint is not committed"
)


def chart_spec(at: AppTest) -> str:
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    return charts[0].proto.spec


def only_checkpoint(tmp_path, monkeypatch, file: str, **cfg) -> tuple[AppTest, torch.nn.Module]:
    """The page run once with a tiny untrained 2-D model on the moons data as the only checkpoint."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(image_shape=(1, 28, 28), hidden=(16,), latent_dim=2, **cfg))
    info = {"name": "moons", "image_shape": [1, 28, 28], "style": "plain", "dark_background": True}
    save(tmp_path / file, model, dataset=info)
    monkeypatch.setenv("VAE_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setenv("VAE_TRAINED_DIR", str(tmp_path / "trained"))
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    return at, model


def map_data(at: AppTest) -> dict:
    """What the live map was mounted with (and no plotly map beside it)."""
    assert not at.get("plotly_chart")
    return view_data(at, "map_live")


def map_xy(at: AppTest) -> np.ndarray:
    d = map_data(at)
    return np.stack([d["x"], d["y"]], 1)


def moons_data():
    from ui.common import load_data  # the page's cached data set (no second rendering of the moons)

    return load_data("moons", None, 28, 1)[0]


def captions(at: AppTest) -> list[str]:
    out = [c.value for c in at.caption]
    for img in at.get("image"):
        out += [i.caption for i in img.proto.imgs]
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A private t-SNE cache folder for the module (so every test computes from scratch)."""
    cache = tmp_path_factory.mktemp("map-cache")
    old = os.environ.get("VAE_CACHE_DIR")
    os.environ["VAE_CACHE_DIR"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("VAE_CACHE_DIR", None)
    else:
        os.environ["VAE_CACHE_DIR"] = old


@pytest.fixture(scope="module")
def app(env) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    no_exception(at)
    at.slider(key="map_n").set_value(N).run()
    return at


def test_map_draws_n_points_with_pca(app):
    no_exception(app)
    assert not app.error
    assert app.radio(key="map_method").value == "pca"  # a 16-D latent: PCA first, no raw codes
    assert app.radio(key="map_method").options == ["PCA", "t-SNE"]
    d = map_data(app)
    assert d["method"] == "pca" and d["axes"] == ["PC 1", "PC 2"] and d["square"] is None
    assert len(d["x"]) == len(d["y"]) == len(d["label"]) == N
    assert d["names"] == list(PHASE_NAMES) and len(set(d["label"])) > 1 and len(d["colours"]) == len(PHASE_NAMES)
    assert d["sprite"]["n"] == N and d["sprite"]["url"].startswith("data:image/png;base64,")
    assert d["uploads"] == [] and d["decoder"]["dim"] == 16 and d["decoder"]["shape"] == [1, 28, 28]
    # Hover decodes z = mean + componentsᵀ · (x, y): the PCA of exactly the codes shown.
    model = load_checkpoint(ROOT / "checkpoints" / "moons-vae.safetensors").model
    pca = maps.Pca.fit(encode_mean(model, moons_data().test_x[:N]).numpy(), 2)
    assert np.allclose(d["inverse"]["mean"], pca.mean, atol=1e-4)
    assert np.allclose(d["inverse"]["basis"], pca.components, atol=1e-3)
    assert np.allclose(map_xy(app), pca.transform(encode_mean(model, moons_data().test_x[:N])), atol=1e-3)
    assert any(e.label == "What am I seeing?" for e in app.expander)
    assert any("Click a point" in i.value for i in app.info)


def test_picking_a_point_decodes_it_and_shows_neighbours(app):
    before = map_data(app)
    send(app, "map_live", trigger=("pick", 5))  # a click on test image 5 of the map
    no_exception(app)
    assert app.number_input(key="map_pick").value == 5
    after = map_data(app)
    # Only the picked point's posterior ellipses change: the rest of the map's data stays as it was.
    assert {k: v for k, v in after.items() if k != "ellipses"} == {k: v for k, v in before.items() if k != "ellipses"}
    assert before["ellipses"] == {"pick": None, "axes": None, "all": None}
    e = after["ellipses"]
    assert e["pick"] == 5 and e["all"] is None
    # PCA: the ±1σ ellipse of Wᵀ diag(σ²) W, W the two components, for test image 5.
    model = load_checkpoint(ROOT / "checkpoints" / "moons-vae.safetensors").model
    with torch.no_grad():
        std = model.encode(moons_data().test_x[5:6]).std.numpy().astype(np.float64)
    w = np.asarray(after["inverse"]["basis"]).T
    cov = w.T @ np.diag(std[0] ** 2) @ w
    assert np.allclose(maps.ellipse_axes(cov[None])[0, :2], e["axes"][:2], atol=2e-4)
    app.run()
    assert map_data(app) == after  # a rerun with the same pick mounts the same data
    caps = captions(app)
    assert any(c.startswith("original #5") for c in caps)
    assert "decoding of μ(x)" in caps
    assert sum(" · d=" in c for c in caps) == 8  # eight nearest neighbours, itself excluded
    assert not any(c.startswith("new moon · #5 ·") and " · d=" in c for c in caps)


def test_the_clouds_option_adds_every_points_ellipse(app):
    app.checkbox(key="map_clouds").check().run()
    no_exception(app)
    e = map_data(app)["ellipses"]
    assert e["pick"] == 5 and len(e["all"]) == N and all(a >= b > 0 for a, b, _ in e["all"])
    assert e["all"][5] == e["axes"]
    app.checkbox(key="map_clouds").uncheck().run()
    assert map_data(app)["ellipses"]["all"] is None


def test_tsne_runs_in_the_background_then_replaces_pca(app, env):
    pca_xy = map_xy(app)
    started = time.monotonic()
    app.radio(key="map_method").set_value("tsne").run()
    no_exception(app)
    key = app.session_state["map_tsne_key"]
    job = maps.RUNNER.get(key)
    if job is not None and not job.done:  # the run did not wait for it: a progress bar polls instead
        assert len(app.get("progress")) == 1
        assert np.allclose(map_xy(app), pca_xy)  # PCA stands in meanwhile
        assert job.wait(120)
    assert time.monotonic() - started < 150
    app.run()
    no_exception(app)
    assert not app.error
    tsne_xy = map_xy(app)
    assert tsne_xy.shape == (N, 2) and not np.allclose(tsne_xy, pca_xy)
    assert map_data(app)["method"] == "tsne" and map_data(app)["inverse"] is None  # t-SNE has no inverse
    assert (env / "tsne" / f"{key}.npy").exists()  # cached on disk for the next visit
    assert map_data(app)["ellipses"] is None and not app.get("checkbox")  # no projection, no ellipses
    assert any(c.value.startswith("t-SNE is no linear projection") for c in app.caption)
    assert not app.get("progress")


def test_uploads_become_stars_and_a_bad_file_one_error(app):
    app.file_uploader(key="map_upload").set_value(
        [("moon.png", moon_png(), "image/png"), ("bad.png", b"not an image", "image/png")]
    ).run()
    no_exception(app)
    errors = [e.value for e in app.error]
    assert len(errors) == 1 and errors[0].startswith("bad.png:")
    d = map_data(app)
    assert [u["name"] for u in d["uploads"]] == ["moon.png"]
    assert d["sprite"]["n"] == N + 1  # its thumbnail after the points'
    assert any(s.value == "Your uploads" for s in app.subheader)


def test_two_dimensional_model_shows_raw_codes_and_the_manifold(tmp_path, monkeypatch, env):
    """A tiny untrained 2-D VAE on the moons data, as the only checkpoint."""
    at, model = only_checkpoint(tmp_path, monkeypatch, "tiny-2d.safetensors")
    no_exception(at)
    assert at.radio(key="map_method").value == "raw"
    at.slider(key="map_n").set_value(N).run()
    at.slider(key="map_grid_n").set_value(6).run()
    no_exception(at)
    xy = map_xy(at)
    assert xy.shape == (N, 2)
    with torch.no_grad():
        mu = model.encode(moons_data().test_x[:N]).mean.numpy()
    # Raw codes: the points are the posterior means themselves, and hovering decodes z = (x, y).
    assert np.allclose(xy, mu, atol=1e-4)
    d = map_data(at)
    assert d["inverse"] == {"mean": [0.0, 0.0], "basis": [[1.0, 0.0], [0.0, 1.0]]}
    assert d["axes"] == ["z₁", "z₂"] and np.allclose(d["square"], maps.grid_square())
    at.number_input(key="map_pick").set_value(4).run()
    with torch.no_grad():
        std = model.encode(moons_data().test_x[4:5]).std.numpy()[0]
    a, b, theta = map_data(at)["ellipses"]["axes"]  # raw codes: the radii are σ₁ and σ₂
    assert np.allclose([a, b], sorted(std, reverse=True), atol=2e-4)
    assert np.isclose(abs(theta), 0.0 if std[0] >= std[1] else np.pi / 2, atol=1e-3)  # axis-aligned
    grid = [i for img in at.get("image") for i in img.proto.imgs if i.caption.startswith("z₁ grows")]
    assert len(grid) == 1
    assert any(s.value == "The decoded manifold" for s in at.subheader)


def test_without_the_runtime_the_plotly_map_stands_in(no_runtime, env):
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    at.slider(key="map_n").set_value(N).run()
    no_exception(at)
    assert not at.error and views(at) == {}
    assert any(c.value.startswith("Live decoding is off here: the in-browser runtime is missing") for c in at.caption)
    counts = figure_points(chart_spec(at))
    assert sum(counts.values()) == N and set(counts) <= set(PHASE_NAMES)


def test_an_ae_has_no_ellipses_and_no_clouds_option(tmp_path, monkeypatch, env):
    at, model = only_checkpoint(tmp_path, monkeypatch, "tiny-ae.safetensors", kind="ae")
    at.slider(key="map_n").set_value(N).run()
    send(at, "map_live", trigger=("pick", 2))
    no_exception(at)
    assert at.number_input(key="map_pick").value == 2
    assert map_data(at)["ellipses"] is None and not at.get("checkbox")
    assert any(c.value.startswith("An AE's code is a point") for c in at.caption)


def test_the_plotly_map_draws_the_ellipses_as_lines(no_runtime, env):
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    at.slider(key="map_n").set_value(N).run()
    at.number_input(key="map_pick").set_value(3).run()
    at.checkbox(key="map_clouds").check().run()
    no_exception(at)
    traces = {t.get("name"): t for t in json.loads(chart_spec(at))["data"]}
    assert {"±1σ of #3", "±2σ of #3", "±1σ of every point"} <= set(traces)
    assert sum(v is None for v in traces["±1σ of every point"]["x"]) == N  # one closed line a point
