"""The Latent map page under Streamlit's AppTest: points on the map, projections, a picked point, uploads."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest
from vae_helpers import figure_points, figure_xy, moon_png, no_exception

from services import maps
from vae.checkpoint import save
from vae.config import ModelConfig
from vae.data import PHASE_NAMES
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
    counts = figure_points(chart_spec(app))
    assert sum(counts.values()) == N
    assert set(counts) <= set(PHASE_NAMES) and len(counts) > 1  # one trace per moon phase on the map
    assert any(e.label == "What am I seeing?" for e in app.expander)
    assert any("Click a point" in i.value for i in app.info)


def test_picking_a_point_decodes_it_and_shows_neighbours(app):
    app.number_input(key="map_pick").set_value(5).run()
    no_exception(app)
    caps = captions(app)
    assert any(c.startswith("original #5") for c in caps)
    assert "decoding of μ(x)" in caps
    assert sum(" · d=" in c for c in caps) == 8  # eight nearest neighbours, itself excluded
    assert not any(c.startswith("new moon · #5 ·") and " · d=" in c for c in caps)


def test_tsne_runs_in_the_background_then_replaces_pca(app, env):
    pca_xy = figure_xy(chart_spec(app))
    started = time.monotonic()
    app.radio(key="map_method").set_value("tsne").run()
    no_exception(app)
    key = app.session_state["map_tsne_key"]
    job = maps.RUNNER.get(key)
    if job is not None and not job.done:  # the run did not wait for it: a progress bar polls instead
        assert len(app.get("progress")) == 1
        assert np.allclose(figure_xy(chart_spec(app)), pca_xy)  # PCA stands in meanwhile
        assert job.wait(120)
    assert time.monotonic() - started < 150
    app.run()
    no_exception(app)
    assert not app.error
    tsne_xy = figure_xy(chart_spec(app))
    assert tsne_xy.shape == (N, 2) and not np.allclose(tsne_xy, pca_xy)
    assert (env / "tsne" / f"{key}.npy").exists()  # cached on disk for the next visit
    assert not app.get("progress")


def test_uploads_become_stars_and_a_bad_file_one_error(app):
    app.file_uploader(key="map_upload").set_value(
        [("moon.png", moon_png(), "image/png"), ("bad.png", b"not an image", "image/png")]
    ).run()
    no_exception(app)
    errors = [e.value for e in app.error]
    assert len(errors) == 1 and errors[0].startswith("bad.png:")
    counts = figure_points(chart_spec(app))
    assert counts.get("your uploads") == 1
    assert any(s.value == "Your uploads" for s in app.subheader)


def test_two_dimensional_model_shows_raw_codes_and_the_manifold(tmp_path, monkeypatch, env):
    """A tiny untrained 2-D VAE on the moons data, as the only checkpoint."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(image_shape=(1, 28, 28), hidden=(16,), latent_dim=2))
    info = {"name": "moons", "image_shape": [1, 28, 28], "style": "plain", "dark_background": True}
    save(tmp_path / "tiny-2d.safetensors", model, dataset=info)
    monkeypatch.setenv("VAE_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setenv("VAE_TRAINED_DIR", str(tmp_path / "trained"))
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    no_exception(at)
    assert at.radio(key="map_method").value == "raw"
    at.slider(key="map_n").set_value(N).run()
    at.slider(key="map_grid_n").set_value(6).run()
    no_exception(at)
    xy = figure_xy(chart_spec(at))
    assert xy.shape == (N, 2)
    from ui.common import load_data  # the page's cached data set (no second rendering of the moons)

    data, _ = load_data("moons", None, 28, 1)
    with torch.no_grad():
        mu = model.encode(data.test_x[:N]).mean.numpy()
    # Raw codes: the points are the posterior means themselves (in label order on the chart).
    assert np.allclose(np.sort(xy[:, 0]), np.sort(mu[:, 0]), atol=1e-4)
    grid = [i for img in at.get("image") for i in img.proto.imgs if i.caption.startswith("z₁ grows")]
    assert len(grid) == 1
    assert any(s.value == "The decoded manifold" for s in at.subheader)
