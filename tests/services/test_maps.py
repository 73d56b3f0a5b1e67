"""services.maps: 2-D maps of codes, placing new codes, the t-SNE disk cache and background map, page state."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from vae_helpers import start_endless

from services import maps, projections
from services.jobs import Cancelled, Runner
from services.projections import LinearFit, tsne
from vae.checkpoint import atomic_write
from vae.config import ModelConfig
from vae.models import build_model

# Few iterations and one thread: each t-SNE here takes well under a second on a busy machine.
QUICK = maps.TsneSettings(max_iter=150, exploration_iter=50, threads=1)
QUICK_TSNE = tsne.Tsne(**{**vars(tsne.PROJECTION), "settings": QUICK})


def blobs(n: int = 200, d: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n codes in d dimensions around 4 well separated centres, and their labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    centres = rng.normal(0, 6, (4, d))
    return (centres[labels] + rng.normal(0, 1, (n, d))).astype(np.float32), labels


def png(fill: int = 230) -> bytes:
    img = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(img).ellipse((14, 14, 50, 50), fill=fill)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


# --------------------------------------------------------------------------- fitting and placing


def test_methods_offered():
    """Raw codes first (the default) for a 2-D latent and only there; PCA first beyond; in the registry's order."""
    assert maps.methods_for(2)[:2] == ["raw", "pca"] and {"tsne", "svd"} <= set(maps.methods_for(2))
    assert maps.methods_for(16)[0] == "pca" and "raw" not in maps.methods_for(16)
    assert maps.methods_for(16) == [m for m in projections.REGISTRY if m != "raw"]
    assert maps.methods_for(1) == ["raw"]


def test_the_registry_holds_one_complete_entry_per_module():
    import importlib
    import pkgutil

    modules = [
        importlib.import_module(f"services.projections.{m.name}") for m in pkgutil.iter_modules(projections.__path__)
    ]
    assert sorted(m.PROJECTION.name for m in modules) == sorted(projections.REGISTRY)  # each file, one entry
    assert {"raw", "pca", "tsne", "svd"} <= set(projections.REGISTRY)
    for name, p in projections.REGISTRY.items():
        assert p.name == name and p.title and p.about
        assert projections.get(name) is p
    with pytest.raises(ValueError, match="unknown map method 'umap'"):
        projections.get("umap")


@pytest.mark.parametrize("method", [m for m, p in projections.REGISTRY.items() if not p.background])
def test_every_linear_projection_inverts_and_projects_posteriors(method):
    """Whatever the projection: its inverse sends a position to a code that it places back there, and its
    covariance is W diag(σ²) Wᵀ for the W it places codes with."""
    x, _ = blobs(100, d=2 if method == "raw" else 6)
    lmap = maps.fit_map(x, method)
    assert lmap.method == method and lmap.xy.shape == (100, 2)
    np.testing.assert_allclose(lmap.place(x[:5]), lmap.xy[:5], atol=1e-4)
    xy = np.array([[0.5, -2.0], [3.0, 1.0]])
    np.testing.assert_allclose(lmap.place(maps.unproject(lmap, xy)), xy, atol=1e-3)
    d = x.shape[1]
    std = np.random.default_rng(0).uniform(0.1, 1, size=(3, d))
    w = lmap.place(np.eye(d)) - lmap.place(np.zeros((1, d)))  # (D, 2): where each unit step of z goes
    want = np.einsum("dk,nd,dl->nkl", w, std**2, w)
    np.testing.assert_allclose(maps.projected_covariances(std, lmap), want, atol=1e-5)


def test_a_linear_fit_that_is_not_orthonormal_inverts_by_the_pseudo_inverse():
    g = np.random.default_rng(3)
    x, w = g.normal(size=(20, 5)), g.normal(size=(2, 5))  # a Gaussian random projection
    fit = LinearFit.of(x, x.mean(0), w)
    mean, basis = fit.inverse()
    xy = g.normal(size=(4, 2))
    np.testing.assert_allclose(fit.place(mean + xy @ basis), xy, atol=1e-5)


def test_raw_and_pca_shapes_and_placement():
    x, _ = blobs(200)
    raw = maps.fit_map(x, "raw")
    assert raw.xy.shape == (200, 2) and raw.xy.dtype == np.float32
    np.testing.assert_array_equal(raw.xy, x[:, :2])
    np.testing.assert_array_equal(raw.place(x[:3]), x[:3, :2])

    pca = maps.fit_map(torch.from_numpy(x), "pca")
    assert pca.method == "pca" and pca.xy.shape == (200, 2)
    # A training code placed on its own PCA map lands on its own point.
    np.testing.assert_allclose(pca.place(x[:10]), pca.xy[:10], atol=1e-4)
    # The first component carries the most variance.
    assert pca.xy[:, 0].var() >= pca.xy[:, 1].var()


def test_pca_matches_scikit_learn_up_to_sign():
    from sklearn.decomposition import PCA

    x, _ = blobs(200)
    ours = maps.Pca.fit(x, 3)
    ref = PCA(n_components=3).fit(x)
    np.testing.assert_allclose(np.abs(ours.components), np.abs(ref.components_), atol=1e-5)
    np.testing.assert_allclose(ours.explained_variance, ref.explained_variance_, rtol=1e-5)
    np.testing.assert_allclose(np.abs(ours.transform(x)), np.abs(ref.transform(x)), atol=1e-3)


def test_a_position_goes_back_to_a_code_on_raw_and_pca_maps_only():
    x, _ = blobs(100, d=6)
    pca = maps.fit_map(x, "pca")
    xy = np.array([[0.5, -2.0], [3.0, 1.0]])
    z = maps.unproject(pca, xy)
    assert z.shape == (2, 6)
    np.testing.assert_allclose(pca.place(z), xy, atol=1e-4)  # the projection undoes it
    np.testing.assert_allclose(maps.unproject(pca, [0.0, 0.0])[0], x.mean(0), atol=1e-4)  # the origin is the mean
    mean, basis = maps.inverse_projection(pca)
    np.testing.assert_allclose(basis @ basis.T, np.eye(2), atol=1e-6)  # orthonormal components
    np.testing.assert_allclose(mean, x.mean(0), atol=1e-5)

    raw = maps.fit_map(x[:, :2], "raw")
    np.testing.assert_array_equal(maps.unproject(raw, xy), xy.astype(np.float32))
    one = maps.fit_map(x[:, :1], "raw")
    np.testing.assert_array_equal(maps.unproject(one, xy), xy[:, :1].astype(np.float32))

    tsne = maps.LatentMap("tsne", np.zeros((4, 2), np.float32), x[:4])
    assert maps.inverse_projection(tsne) is None
    with pytest.raises(ValueError, match="no inverse"):
        maps.unproject(tsne, xy)


def test_one_dimensional_codes_get_a_zero_second_coordinate():
    x = np.arange(5, dtype=np.float32)[:, None]
    m = maps.fit_map(x, "pca")
    assert m.method == "raw" and m.xy.shape == (5, 2)
    assert (m.xy[:, 1] == 0).all()


def test_bad_input_is_refused():
    x, _ = blobs(20)
    with pytest.raises(ValueError, match="method"):
        maps.fit_map(x, "umap")
    with pytest.raises(ValueError, match="tsne_map_async"):  # t-SNE only runs in the background
        maps.fit_map(x, "tsne")
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        maps.fit_map(x[0], "pca")
    with pytest.raises(ValueError, match="dimensions"):
        maps.fit_map(x, "pca").place(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="at least 4"):
        maps.tsne_embedding(x[:3], QUICK)
    assert maps.fit_map(x, "pca").place(np.zeros((0, 8))).shape == (0, 2)


def test_tsne_separates_clusters_and_reports_progress():
    x, labels = blobs(200)
    seen: list[float] = []
    xy = maps.tsne_embedding(x, QUICK, progress=lambda f, msg: seen.append(f))
    assert xy.shape == (200, 2) and xy.dtype == np.float32 and np.isfinite(xy).all()
    # One report every PROGRESS_EVERY iterations, across both phases, besides the start and the end.
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    assert len(seen) >= QUICK.max_iter // maps.PROGRESS_EVERY
    # Neighbourhoods survive: a point's nearest map neighbour almost always shares its cluster.
    nn = maps.neighbours(xy, xy, 2)[:, 1]
    assert (labels[nn] == labels).mean() > 0.9


def test_tsne_is_the_same_for_a_seed_and_differs_for_another():
    x, _ = blobs(200)
    np.testing.assert_array_equal(maps.tsne_embedding(x, QUICK), maps.tsne_embedding(x, QUICK))
    fft = maps.TsneSettings(max_iter=60, exploration_iter=20, threads=1, fft_from=0)
    a = maps.tsne_embedding(x, fft)
    other = maps.TsneSettings(max_iter=60, exploration_iter=20, threads=1, fft_from=0, seed=1)
    assert not np.array_equal(a, maps.tsne_embedding(x, other))


def test_tsne_by_fft_is_the_same_for_a_seed_and_reports_progress():
    # Large maps take the FFT gradient (small ones Barnes-Hut): forced here on a few points, few iterations.
    x, _ = blobs(100)
    fft = maps.TsneSettings(max_iter=60, exploration_iter=20, threads=1, fft_from=0)
    seen: list[str] = []
    a = maps.tsne_embedding(x, fft, progress=lambda f, msg: seen.append(msg))
    assert a.shape == (100, 2) and np.isfinite(a).all()
    assert f"iteration {fft.max_iter} of {fft.max_iter}" in seen
    np.testing.assert_array_equal(a, maps.tsne_embedding(x, fft))
    assert maps.tsne_key(x, fft) != maps.tsne_key(x, maps.TsneSettings(max_iter=60, exploration_iter=20, threads=1))


def test_tsne_of_a_handful_of_points_lowers_the_perplexity():
    x, _ = blobs(6)
    assert maps.tsne_embedding(x, QUICK).shape == (6, 2)


def test_tsne_without_opentsne_says_what_to_install(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "openTSNE", None)  # makes `import openTSNE` fail
    with pytest.raises(RuntimeError, match="openTSNE"):
        maps.tsne_embedding(blobs(20)[0], maps.TsneSettings(max_iter=60, exploration_iter=20, threads=1, fft_from=0))
    assert maps.tsne_embedding(blobs(20)[0], QUICK).shape == (20, 2)  # a small map needs only scikit-learn


def test_tsne_places_new_codes_at_the_mean_of_their_latent_neighbours():
    x, _ = blobs(50, d=3)
    xy = np.random.default_rng(1).normal(size=(50, 2)).astype(np.float32)
    m = maps.LatentMap("tsne", xy, x, k=3)
    q = x[:4] + 0.01
    expected = np.stack([xy[np.argsort(((x - qi) ** 2).sum(1))[:3]].mean(0) for qi in q])
    np.testing.assert_allclose(m.place(q), expected, atol=1e-5)


def test_tsne_progress_can_stop_the_computation():
    x, _ = blobs(100)

    def stop(fraction, message):
        if message.startswith(f"iteration {maps.PROGRESS_EVERY} "):
            raise Cancelled

    with pytest.raises(Cancelled):
        maps.tsne_embedding(x, QUICK, progress=stop)


# --------------------------------------------------------------------------- disk cache


def test_cache_round_trip_and_atomic_write(tmp_path):
    cache = maps.DiskCache(tmp_path / "tsne")
    assert cache.load("tsne-1-abc") is None
    arr = np.arange(12, dtype=np.float32).reshape(6, 2)
    path = cache.save("tsne-1-abc", arr)
    assert path == tmp_path / "tsne" / "tsne-1-abc.npy"
    np.testing.assert_array_equal(cache.load("tsne-1-abc"), arr)

    # A write that fails half-way leaves the old file whole and no temporary file behind.
    def broken(f):
        f.write(b"half a file")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, broken)
    np.testing.assert_array_equal(cache.load("tsne-1-abc"), arr)
    assert sorted(p.name for p in (tmp_path / "tsne").iterdir()) == ["tsne-1-abc.npy"]

    path.write_bytes(b"garbage")  # a damaged file is a miss, not a crash
    assert cache.load("tsne-1-abc") is None
    for bad in ("../escape", "a/b", ".hidden", ""):
        with pytest.raises(ValueError):
            cache.path(bad)


def test_the_cache_is_the_projects_one_cache_folder(monkeypatch, tmp_path):
    from vae.data import cache_dir

    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path))
    assert maps.DiskCache().root == tmp_path / "maps"
    monkeypatch.delenv("VAE_CACHE_DIR")
    assert maps.DiskCache().root == cache_dir() / "maps"


def test_tsne_key_names_codes_settings_and_library(monkeypatch):
    x, _ = blobs(30)
    k = maps.tsne_key(x, QUICK)
    assert k == maps.tsne_key(torch.from_numpy(x.copy()), QUICK)
    assert k != maps.tsne_key(x[:29], QUICK)
    assert k != maps.tsne_key(x + 1e-3, QUICK)
    assert k != maps.tsne_key(x, maps.TsneSettings(max_iter=260, exploration_iter=50, threads=1))
    # The library and its version are part of the key: a map made by another t-SNE is not read back.
    # Small maps are scikit-learn's, large ones (from fft_from points) openTSNE's.
    fft = maps.TsneSettings(max_iter=150, exploration_iter=50, threads=1, fft_from=10)
    big = maps.tsne_key(x, fft)
    monkeypatch.setattr(tsne, "_opentsne_version", lambda: "0.0.0")
    assert k == maps.tsne_key(x, QUICK) and big != maps.tsne_key(x, fft)
    monkeypatch.setattr(tsne, "_sklearn_version", lambda: "0.0.0")
    assert k != maps.tsne_key(x, QUICK)
    maps.DiskCache().path(k)  # a valid file name


def test_tsne_map_async_computes_once_then_reads_the_disk(tmp_path):
    x, _ = blobs(120)
    cache = maps.DiskCache(tmp_path)
    lmap, job, key = maps.tsne_map_async(x, QUICK, cache=cache, runner=Runner())
    assert lmap is None and job is not None  # not blocking: the caller polls
    assert job.wait(120) and job.state == "done", job.error
    assert (tmp_path / f"{key}.npy").exists()
    fresh = Runner()  # e.g. a new server process: the map comes from disk, no job
    lmap2, job2, key2 = maps.tsne_map_async(x, QUICK, cache=cache, runner=fresh)
    assert key2 == key and job2 is None and fresh.get(key) is None
    np.testing.assert_array_equal(lmap2.xy, job.result.xy)
    assert lmap2.place(x[:2]).shape == (2, 2)


# --------------------------------------------------------------------------- the page's map and state


def test_current_map_draws_pca_while_tsne_computes_then_tsne(tmp_path):
    x, _ = blobs(120)
    cache, runner = maps.DiskCache(tmp_path), Runner()
    assert maps.current_map(x, "raw").lmap.method == "raw"
    pca = maps.current_map(x, "pca")
    assert (pca.lmap.method, pca.job_key, pca.waiting, pca.error) == ("pca", None, False, None)

    first = maps.current_map(x, "tsne", cache=cache, runner=runner, projection=QUICK_TSNE)
    assert first.job_key == maps.tsne_key(x, QUICK) and first.error is None
    np.testing.assert_array_equal(first.lmap.xy, pca.lmap.xy)  # PCA stands in meanwhile
    assert runner.get(first.job_key).wait(120)
    done = maps.current_map(x, "tsne", first.job_key, cache=cache, runner=runner, projection=QUICK_TSNE)
    assert done.lmap.method == "tsne" and not done.waiting and done.job_key == first.job_key


def test_current_map_cancels_the_sessions_previous_tsne(tmp_path):
    runner = Runner()
    old = start_endless(runner, "tsne-old")
    x, _ = blobs(60)
    view = maps.current_map(x, "tsne", "tsne-old", cache=maps.DiskCache(tmp_path), runner=runner, projection=QUICK_TSNE)
    assert old.wait(10) and old.state == "cancelled"
    runner.cancel(view.job_key)


def test_current_map_reports_a_failed_tsne(tmp_path, monkeypatch):
    def broken(codes, settings, progress):
        raise RuntimeError("no memory")

    monkeypatch.setattr(tsne, "tsne_embedding", broken)
    x, runner = blobs(30)[0], Runner()
    view = maps.current_map(x, "tsne", cache=maps.DiskCache(tmp_path), runner=runner, projection=QUICK_TSNE)
    assert runner.get(view.job_key).wait(10)
    view = maps.current_map(x, "tsne", cache=maps.DiskCache(tmp_path), runner=runner, projection=QUICK_TSNE)
    assert view.lmap.method == "pca" and not view.waiting and "no memory" in view.error


def test_neighbour_list_excludes_the_point_itself():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [5.0, 5.0]], dtype=np.float32)
    assert maps.neighbour_list(x, 0, 2) == [(1, 1.0), (2, 2.0)]
    assert [j for j, _ in maps.neighbour_list(torch.from_numpy(x), 3, 8)] == [2, 1, 0]  # all there are


# --------------------------------------------------------------------------- uploads and the manifold grid


def test_encode_uploads_keeps_good_files_and_names_bad_ones():
    torch.manual_seed(0)
    model = build_model(ModelConfig(image_shape=(1, 28, 28), hidden=(16,), latent_dim=3))
    up = maps.encode_uploads([("moon.png", png()), ("bad.png", b"not an image"), ("empty.png", b"")], model)
    assert up.names == ["moon.png"]
    assert up.images.shape == (1, 1, 28, 28) and up.codes.shape == (1, 3)
    assert [n for n, _ in up.errors] == ["bad.png", "empty.png"]
    none = maps.encode_uploads([("bad.png", b"x")], model)
    assert none.names == [] and none.codes.shape == (0, 3)


def test_manifold_image_tiles_the_grid():
    torch.manual_seed(0)
    model = build_model(ModelConfig(image_shape=(1, 28, 28), hidden=(16,), latent_dim=2))
    grid = maps.manifold_image(model, 4)
    assert grid.shape == (1, 4 * 28, 4 * 28)  # grey stays grey
    lo, hi = maps.grid_square()
    assert lo == pytest.approx(-1.6449, abs=1e-4) and hi == pytest.approx(1.6449, abs=1e-4)  # N(0, 1) 5 % and 95 %
    with pytest.raises(ValueError, match="2-D"):
        maps.manifold_image(build_model(ModelConfig(image_shape=(1, 28, 28), hidden=(16,), latent_dim=3)), 4)


# --------------------------------------------------------------------------- posterior ellipses


def test_raw_ellipses_are_axis_aligned_with_radii_sigma():
    std = np.array([[0.5, 0.2], [0.1, 0.3]], dtype=np.float32)
    lmap = maps.fit_map(np.zeros((2, 2)), "raw")
    cov = maps.projected_covariances(std, lmap)
    assert np.allclose(cov, [np.diag([0.25, 0.04]), np.diag([0.01, 0.09])])
    axes = maps.ellipse_axes(cov)
    assert np.allclose(axes[0], [0.5, 0.2, 0.0], atol=1e-6)  # the long axis along x
    assert np.allclose(axes[1, :2], [0.3, 0.1]) and np.isclose(abs(axes[1, 2]), np.pi / 2)  # ... along y
    # The outline's extreme points are ±kσ from the centre.
    ring = maps.ellipse_outline(np.array([1.0, 2.0]), axes[0], k=2.0)
    assert np.allclose(ring[0], ring[-1]) and np.isclose(ring[:, 0].max(), 2.0) and np.isclose(ring[:, 1].min(), 1.6)


def test_pca_ellipses_are_the_projected_covariance():
    # An orthonormal W (D=3, 2): the plane rotated by 45° about the third axis.
    c = 1 / np.sqrt(2)
    w = np.array([[c, c, 0.0], [-c, c, 0.0]])  # components (2, D)
    codes, _ = blobs(50, 3)
    fit = LinearFit.of(codes, np.zeros(3), w)
    lmap = maps.LatentMap("pca", fit.xy, codes, fit=fit)
    std = np.array([[2.0, 1.0, 5.0]])
    cov = maps.projected_covariances(std, lmap)[0]
    # Wᵀ diag(4, 1, 25) W with W = componentsᵀ: the third dimension is orthogonal to the plane.
    assert np.allclose(cov, [[2.5, -1.5], [-1.5, 2.5]])
    a, b, theta = maps.ellipse_axes(cov[None])[0]
    assert np.isclose(a, 2.0) and np.isclose(b, 1.0)  # eigenvalues 4 and 1: σ₁ and σ₂ come back
    assert np.isclose(np.tan(theta), -1.0)  # along the first component's image (1, -1)/√2
    # An isotropic σ gives a circle of radius σ in any orthonormal plane.
    assert np.allclose(maps.ellipse_axes(maps.projected_covariances(np.full((1, 3), 0.7), lmap))[0, :2], 0.7)


def test_tsne_has_no_ellipses_and_an_ae_no_sigma():
    codes, _ = blobs(20, 4)
    lmap = maps.LatentMap("tsne", codes[:, :2].copy(), codes)
    assert maps.projected_covariances(np.ones((20, 4)), lmap) is None
    torch.manual_seed(0)
    vae = build_model(ModelConfig(image_shape=(1, 8, 8), hidden=(8,), latent_dim=3))
    x = torch.rand(5, 1, 8, 8)
    std = maps.encode_std(vae, x, batch_size=2)
    assert std.shape == (5, 3) and np.allclose(std, vae.encode(x).std.detach().numpy(), atol=1e-6)
    ae = build_model(ModelConfig(image_shape=(1, 8, 8), hidden=(8,), latent_dim=3, kind="ae"))
    assert maps.encode_std(ae, x) is None
