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

from services import maps, projections
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


def tiny_checkpoint(folder: Path, file: str, latent_dim: int = 2, **cfg) -> torch.nn.Module:
    """A tiny untrained model on the moons data, saved in folder."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(image_shape=(1, 28, 28), hidden=(16,), latent_dim=latent_dim, **cfg))
    info = {"name": "moons", "image_shape": [1, 28, 28], "style": "plain", "dark_background": True}
    save(folder / file, model, dataset=info)
    return model


def only_checkpoint(tmp_path, monkeypatch, file: str, **cfg) -> tuple[AppTest, torch.nn.Module]:
    """The page run once with a tiny untrained 2-D model on the moons data as the only checkpoint."""
    model = tiny_checkpoint(tmp_path, file, **cfg)
    monkeypatch.setenv("VAE_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setenv("VAE_TRAINED_DIR", str(tmp_path / "trained"))
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    return at, model


def scoped(at: AppTest, kind: str, name: str):
    """The widget ``name`` of the model shown now (its key is ui.state.scoped: ``name@<model>``)."""
    (w,) = [w for w in at.get(kind) if (w.key or "").startswith(f"{name}@")]
    return w


def titles(latent_dim: int) -> list[str]:
    """The projections the page offers for a latent size, as the radio shows them."""
    return [projections.get(m).title for m in maps.methods_for(latent_dim)]


def layers(at: AppTest) -> dict[str, dict]:
    """The live map's overlays by id."""
    return {d["id"]: d for d in map_data(at)["overlays"]}


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
    scoped(at, "slider", "map_n").set_value(N).run()
    return at


def test_map_draws_n_points_with_pca(app):
    no_exception(app)
    assert not app.error
    assert scoped(app, "radio", "map_method").value == "pca"  # a 16-D latent: PCA first, no raw codes
    assert scoped(app, "radio", "map_method").options == titles(16)  # the registry's, PCA first
    d = map_data(app)
    assert titles(16)[0] == "PCA" and "SVD" in titles(16) and "raw codes" not in titles(16)
    assert d["method"] == "pca" and d["axes"] == ["PC 1", "PC 2"] and d["overlays"] == []
    assert d["note"].endswith("the inverse of the PCA projection")
    assert len(d["x"]) == len(d["y"]) == len(d["label"]) == N
    assert d["names"] == list(PHASE_NAMES) and len(set(d["label"])) > 1 and len(d["colours"]) == len(PHASE_NAMES)
    assert d["sprite"]["n"] == N and d["sprite"]["url"].startswith("data:image/png;base64,")
    assert d["decoder"]["dim"] == 16 and d["decoder"]["shape"] == [1, 28, 28]
    # Hover decodes z = mean + componentsᵀ · (x, y): the PCA of exactly the codes shown.
    model = load_checkpoint(ROOT / "checkpoints" / "moons-vae.safetensors").model
    pca = maps.Pca.fit(encode_mean(model, moons_data().test_x[:N]).numpy(), 2)
    assert np.allclose(d["inverse"]["mean"], pca.mean, atol=1e-4)
    assert np.allclose(d["inverse"]["basis"], pca.components, atol=1e-3)
    assert np.allclose(map_xy(app), pca.transform(encode_mean(model, moons_data().test_x[:N])), atol=1e-3)
    assert any(e.label == "What am I seeing?" for e in app.expander)
    assert any("Click a point" in i.value for i in app.info)
    text = next(m.value for m in app.markdown if "the map needs two coordinates" in m.value)
    assert all(p.about in text for p in projections.REGISTRY.values())  # each projection's paragraph


def test_picking_a_point_decodes_it_and_shows_neighbours(app):
    before = map_data(app)
    send(app, "map_live", trigger=("pick", 5))  # a click on test image 5 of the map
    no_exception(app)
    assert scoped(app, "number_input", "map_pick").value == 5
    after = map_data(app)
    # Only the overlays change (the picked point's ellipses and neighbours): the rest stays as it was.
    assert {k: v for k, v in after.items() if k != "overlays"} == {k: v for k, v in before.items() if k != "overlays"}
    got = layers(app)
    assert set(got) == {"pick1", "pick2", "neighbours"} and got["pick2"]["name"] == "±2σ of #5"
    e = got["pick1"]
    assert e["at"] == [5] and got["pick2"]["k"] == 2 and got["pick2"]["axes"] == e["axes"]
    e = {"axes": e["axes"][0]}
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
    near = [c for c in caps if " · d=" in c]
    assert len(near) == 8 and "#5 · d=" not in " ".join(near)  # eight nearest neighbours, itself excluded
    # Each caption fits its picture's width in two lines at most (a 12-character line under 84 pixels):
    # "full moon · #1234 · d=0.12" under a 56-pixel picture wrapped onto four.
    assert all(len(c) <= 2 * 12 for c in near), near
    # Their labels are counted on one line instead; those among the shown points are ringed on the map.
    shown = [j for j in (int(c[1 : c.index(" ")]) for c in near) if j < N]
    assert got["neighbours"]["at"] == shown and got["neighbours"]["name"] == "nearest in z to #5"


def test_the_clouds_option_adds_every_points_ellipse(app):
    app.checkbox(key="map_clouds").check().run()
    no_exception(app)
    got = layers(app)
    clouds = got["clouds"]
    assert got["pick1"]["at"] == [5] and clouds["at"] == list(range(N)) and clouds["style"]["colour"] is None
    assert all(a >= b > 0 for a, b, _ in clouds["axes"]) and clouds["axes"][5] == got["pick1"]["axes"][0]
    app.checkbox(key="map_clouds").uncheck().run()
    assert "clouds" not in layers(app)


def test_tsne_runs_in_the_background_then_replaces_pca(app, env):
    pca_xy = map_xy(app)
    started = time.monotonic()
    scoped(app, "radio", "map_method").set_value("tsne").run()
    no_exception(app)
    key = app.session_state["map_job_key"]
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
    assert (env / "maps" / f"{key}.npy").exists()  # cached on disk for the next visit, in the one cache folder
    assert set(layers(app)) == {"neighbours"} and not app.get("checkbox")  # no projection, no ellipses
    assert map_data(app)["note"].startswith("t-SNE has no inverse")
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
    stars = layers(app)["uploads"]
    assert stars["kind"] == "stars" and stars["text"] == stars["title"] == ["moon.png"] and stars["short"] == ["1"]
    assert d["sprite"]["n"] == N + 1  # its thumbnail after the points'
    assert any(s.value == "Your uploads" for s in app.subheader)
    assert any(m.value == "**★1** moon.png" for m in app.markdown)  # the number a crowded star shows


def test_two_dimensional_model_shows_raw_codes_and_the_manifold(tmp_path, monkeypatch, env):
    """A tiny untrained 2-D VAE on the moons data, as the only checkpoint."""
    at, model = only_checkpoint(tmp_path, monkeypatch, "tiny-2d.safetensors")
    no_exception(at)
    assert scoped(at, "radio", "map_method").value == "raw"
    scoped(at, "slider", "map_n").set_value(N).run()
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
    assert d["axes"] == ["z1", "z2"]  # ui.state.dim_label: the one numbering of latent dimensions
    assert np.allclose(layers(at)["square"]["x"], maps.grid_square())
    scoped(at, "number_input", "map_pick").set_value(4).run()
    with torch.no_grad():
        std = model.encode(moons_data().test_x[4:5]).std.numpy()[0]
    ((a, b, theta),) = layers(at)["pick1"]["axes"]  # raw codes: the radii are σ₁ and σ₂
    assert np.allclose([a, b], sorted(std, reverse=True), atol=2e-4)
    assert np.isclose(abs(theta), 0.0 if std[0] >= std[1] else np.pi / 2, atol=1e-3)  # axis-aligned
    grid = [i for img in at.get("image") for i in img.proto.imgs if i.caption.startswith("z1 grows")]
    assert len(grid) == 1
    assert any(s.value == "The decoded manifold" for s in at.subheader)


def test_without_the_runtime_the_plotly_map_stands_in(no_runtime, env):
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    scoped(at, "slider", "map_n").set_value(N).run()
    no_exception(at)
    assert not at.error and views(at) == {}
    assert any(c.value.startswith("Live decoding is off here: the in-browser runtime is missing") for c in at.caption)
    counts = figure_points(chart_spec(at))
    assert sum(counts.values()) == N and set(counts) <= set(PHASE_NAMES)


def test_an_ae_has_no_ellipses_and_no_clouds_option(tmp_path, monkeypatch, env):
    at, model = only_checkpoint(tmp_path, monkeypatch, "tiny-ae.safetensors", kind="ae")
    scoped(at, "slider", "map_n").set_value(N).run()
    send(at, "map_live", trigger=("pick", 2))
    no_exception(at)
    assert scoped(at, "number_input", "map_pick").value == 2
    assert set(layers(at)) == {"square", "neighbours"} and not at.get("checkbox")  # no ellipses
    assert any(c.value.startswith("An AE's code is a point") for c in at.caption)


def test_the_plotly_map_draws_the_ellipses_as_lines(no_runtime, env):
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    scoped(at, "slider", "map_n").set_value(N).run()
    scoped(at, "number_input", "map_pick").set_value(3).run()
    at.checkbox(key="map_clouds").check().run()
    no_exception(at)
    traces = json.loads(chart_spec(at))["data"]
    assert {"±1σ of #3", "±2σ of #3", "±1σ of every point", "nearest in z to #3"} <= {t.get("name") for t in traces}
    clouds = [t for t in traces if t.get("name") == "±1σ of every point"]  # one trace per label colour
    assert sum(v is None for t in clouds for v in t["x"]) == N  # one closed line a point


def valid(w) -> bool:
    """The widget shows a value it can have (a choice among its options, a number within its range)."""
    if w.type == "radio":
        return w.value in w.options or w.format_func(w.value) in w.options
    if w.value is None:
        return True
    return w.min <= w.value <= w.max


def test_a_model_switch_starts_the_new_model_from_its_own_defaults(tmp_path, monkeypatch, env):
    """The model-scoped widgets (ui.state.scoped): another model gets its own, from its own defaults (before,
    the number of points chosen on one model stayed on the next), and no widget shows what it cannot have."""
    tiny_checkpoint(tmp_path, "a-3d.safetensors", latent_dim=3)
    tiny_checkpoint(tmp_path, "b-2d.safetensors", latent_dim=2)
    monkeypatch.setenv("VAE_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setenv("VAE_TRAINED_DIR", str(tmp_path / "trained"))
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["model_choice"] = "a-3d"
    at.run()
    scoped(at, "slider", "map_n").set_value(N).run()
    scoped(at, "radio", "map_method").set_value("svd").run()
    scoped(at, "number_input", "map_pick").set_value(60).run()
    no_exception(at)
    assert layers(at)["pick1"]["at"] == [60] and map_data(at)["method"] == "svd"

    at.selectbox(key="model_picker").set_value("b-2d").run()
    no_exception(at)
    method, n, pick = (
        scoped(at, "radio", "map_method"),
        scoped(at, "slider", "map_n"),
        scoped(at, "number_input", "map_pick"),
    )
    assert method.value == "raw" and method.options == titles(2)  # a 2-D model's default: raw codes
    assert n.value == min(2000, n.max) and pick.value is None and "pick1" not in layers(at)
    assert map_data(at)["axes"] == ["z1", "z2"]
    assert all(valid(w) for kind in ("radio", "slider", "number_input") for w in at.get(kind))

    at.selectbox(key="model_picker").set_value("a-3d").run()  # and back: again only what this model can have
    no_exception(at)
    assert scoped(at, "radio", "map_method").options == titles(3)
    assert all(valid(w) for kind in ("radio", "slider", "number_input") for w in at.get(kind))
