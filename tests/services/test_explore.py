"""services.explore: latent paths, traversals, the manifold grid, moon phases and the export helpers."""

from __future__ import annotations

import dataclasses
import io
import math
from statistics import NormalDist

import numpy as np
import pytest
import torch
from PIL import Image

from services.explore import (
    crossfade,
    decode_batches,
    gif_bytes,
    interpolate,
    latent_path,
    manifold_grid,
    nearest,
    path_at,
    path_metrics,
    pixel_distance,
    png_bytes,
    prior_log_density,
    slerp,
    strip,
    traversal,
)
from vae.datasets.moons import moon_pair

# --------------------------------------------------------------------------- paths in z


def test_slerp_hits_both_endpoints():
    z0, z1 = torch.tensor([1.0, 2.0, -0.5]), torch.tensor([-0.3, 0.7, 2.0])
    out = slerp(z0, z1, torch.tensor([0.0, 0.5, 1.0]))
    assert out.shape == (3, 3)
    assert torch.allclose(out[0], z0, atol=1e-6)
    assert torch.allclose(out[-1], z1, atol=1e-6)


def test_slerp_keeps_the_norm_of_equal_norm_endpoints_where_linear_shrinks_it():
    torch.manual_seed(1)
    z0, z1 = torch.randn(16), torch.randn(16)
    z1 = z1 / z1.norm() * z0.norm()
    s = interpolate(z0, z1, 11, "slerp")
    lin = interpolate(z0, z1, 11, "linear")
    assert torch.allclose(s.norm(dim=1), z0.norm().expand(11), rtol=1e-5)
    assert (lin.norm(dim=1)[1:-1] < z0.norm() - 1e-3).all()  # the chord cuts inside the sphere
    # Along a great circle: equal angles between consecutive codes.
    cos = torch.nn.functional.cosine_similarity(s[:-1], s[1:], dim=1)
    assert torch.allclose(cos, cos[0].expand(10), atol=1e-5)


def test_slerp_of_different_norms_moves_the_norm_monotonically_between_them():
    z0 = torch.tensor([3.0, 0.0])
    z1 = torch.tensor([0.0, 1.0])
    norms = slerp(z0, z1, torch.linspace(0, 1, 9)).norm(dim=1)
    assert norms[0] == pytest.approx(3.0) and norms[-1] == pytest.approx(1.0)
    assert (norms[1:] <= norms[:-1] + 1e-6).all()


def test_slerp_of_parallel_codes_falls_back_to_linear():
    z0 = torch.tensor([1.0, 1.0])
    t = torch.linspace(0, 1, 5)
    for z1 in (2 * z0, -z0):  # same direction and opposite directions
        out = slerp(z0, z1, t)
        assert torch.isfinite(out).all()
        assert torch.allclose(out, (1 - t[:, None]) * z0 + t[:, None] * z1, atol=1e-6)


def test_path_at_any_t_lies_on_the_interpolation():
    z0, z1 = torch.tensor([1.0, 2.0, -0.5]), torch.tensor([-0.3, 0.7, 2.0])
    for method in ("linear", "slerp"):
        steps = interpolate(z0, z1, 5, method)
        assert torch.allclose(path_at(z0, z1, [0.0, 0.25, 1.0], method), steps[[0, 1, 4]], atol=1e-6)
        assert path_at(z0, z1, 0.5, method).shape == (1, 3)
    with pytest.raises(ValueError, match="linear or slerp"):
        path_at(z0, z1, [0.5], "cubic")


def test_linear_interpolate_endpoints_and_even_steps():
    z0, z1 = torch.tensor([0.0, -2.0]), torch.tensor([4.0, 2.0])
    out = interpolate(z0, z1, 5)
    assert out.shape == (5, 2)
    assert torch.equal(out[0], z0) and torch.equal(out[-1], z1)
    assert torch.allclose(out[2], torch.tensor([2.0, 0.0]))
    assert torch.allclose(out[1:] - out[:-1], torch.tensor([1.0, 1.0]).expand(4, 2))


def test_interpolate_rejects_an_unknown_method():
    with pytest.raises(ValueError, match="linear or slerp"):
        interpolate(torch.zeros(2), torch.ones(2), 3, "cubic")


def test_crossfade_blends_pixels_from_one_image_to_the_other():
    x0, x1 = torch.zeros(1, 4, 4), torch.ones(1, 4, 4)
    out = crossfade(x0, x1, 5)
    assert out.shape == (5, 1, 4, 4)
    assert torch.equal(out[0], x0) and torch.equal(out[-1], x1)
    assert torch.allclose(out.mean(dim=(1, 2, 3)), torch.linspace(0, 1, 5))


def test_traversal_sets_only_one_dimension():
    z = torch.tensor([0.5, -1.0, 2.0, 0.0])
    z_before = z.clone()
    values = [-3.0, 0.0, 1.5]
    out = traversal(z, 2, values)
    assert out.shape == (3, 4)
    assert torch.equal(out[:, 2], torch.tensor(values))
    others = [0, 1, 3]
    assert torch.equal(out[:, others], z[others].expand(3, 3))
    assert torch.equal(z, z_before)  # the input code is not modified


def test_manifold_grid_uses_the_normal_inverse_cdf_and_runs_top_to_bottom():
    n = 5
    grid = manifold_grid(n)
    assert grid.shape == (n * n, 2)
    expected = torch.tensor([NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, n)], dtype=torch.float32)
    rows = grid.reshape(n, n, 2)
    # Columns: z1 from low to high, the same in every row.
    for r in range(n):
        assert torch.allclose(rows[r, :, 0], expected, atol=1e-5)
    # Rows: z2 from high (top) to low (bottom), constant along a row.
    assert torch.allclose(rows[:, 0, 1], expected.flip(0), atol=1e-5)
    assert torch.allclose(rows[:, :, 1], rows[:, :1, 1].expand(n, n))
    assert grid[0].tolist() == pytest.approx([expected[0].item(), expected[-1].item()])  # top-left
    assert grid[-1].tolist() == pytest.approx([expected[-1].item(), expected[0].item()])  # bottom-right


def test_manifold_grid_spacing_is_not_uniform_in_z():
    v = manifold_grid(7)[:7, 0]
    gaps = v[1:] - v[:-1]
    assert gaps[0] > gaps[3] and gaps[-1] > gaps[3]  # wider steps in the tails
    assert v[3].item() == pytest.approx(0.0, abs=1e-6)


def test_prior_log_density_known_values():
    for d in (1, 2, 16):
        assert prior_log_density(torch.zeros(1, d)).item() == pytest.approx(-d / 2 * math.log(2 * math.pi), rel=1e-6)
    z = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    dens = prior_log_density(z)
    assert dens.shape == (2,)
    assert dens[0].item() == pytest.approx(-math.log(2 * math.pi) - 2.5, rel=1e-6)


def test_nearest_distances_and_indices():
    ref = torch.tensor([[0.0, 0.0], [3.0, 4.0], [10.0, 0.0]])
    q = torch.tensor([[3.0, 4.0], [9.0, 0.0]])
    dist, idx = nearest(ref, q)
    assert dist.shape == idx.shape == (2, 1)
    assert idx[:, 0].tolist() == [1, 2]
    assert dist[:, 0].tolist() == pytest.approx([0.0, 1.0], abs=1e-5)
    dist2, idx2 = nearest(ref, q, k=2)
    assert idx2[0].tolist() == [1, 0] and dist2[0].tolist() == pytest.approx([0.0, 5.0], abs=1e-5)
    dist9, _ = nearest(ref, q, k=9)  # more neighbours than references: all of them
    assert dist9.shape == (2, 3)


def test_pixel_distance_is_zero_for_identical_images_and_rms_otherwise():
    torch.manual_seed(0)
    ref = torch.rand(6, 1, 8, 8)
    assert torch.allclose(pixel_distance(ref[2:4], ref), torch.zeros(2), atol=1e-3)
    white, black = torch.ones(1, 1, 8, 8), torch.zeros(3, 1, 8, 8)
    assert pixel_distance(white, black).item() == pytest.approx(1.0, abs=1e-5)
    grey = torch.full((1, 1, 8, 8), 0.25)
    assert pixel_distance(grey, black).item() == pytest.approx(0.25, abs=1e-5)


def test_decode_batches_matches_one_big_decode(tiny_model):
    z = torch.randn(10, 2)
    out = decode_batches(tiny_model, z, batch_size=3)
    with torch.no_grad():
        assert torch.allclose(out, tiny_model.decode(z), atol=1e-6)
    assert out.shape == (10, 1, 28, 28)


def test_latent_path_runs_between_the_two_posterior_means(tiny_model, moons):
    xa, xb = moons.test_x[0], moons.test_x[1]
    z, frames = latent_path(tiny_model, xa, xb, 5, "slerp")
    mu = tiny_model.encode(torch.stack([xa, xb])).mean.detach()
    assert z.shape == (5, 2) and frames.shape == (5, 1, 28, 28)
    assert torch.allclose(z[0], mu[0], atol=1e-5) and torch.allclose(z[-1], mu[1], atol=1e-5)
    assert torch.allclose(frames, decode_batches(tiny_model, z))


def test_path_metrics_names_and_values():
    z = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    m = path_metrics(z, train_codes=torch.tensor([[0.0, 0.0], [3.0, 0.0]]))
    assert sorted(m) == ["distance to nearest training code", "log N(z; 0, I)"]
    np.testing.assert_allclose(m["distance to nearest training code"], [0.0, 4.0])
    np.testing.assert_allclose(m["log N(z; 0, I)"], [-math.log(2 * math.pi), -math.log(2 * math.pi) - 12.5], rtol=1e-6)
    ae = path_metrics(z, train_codes=torch.tensor([[0.0, 0.0]]), prior=False)  # an AE has no prior
    assert list(ae) == ["distance to nearest training code"]


# --------------------------------------------------------------------------- moons


def _frames(n: int) -> torch.Tensor:
    return torch.linspace(0, 1, n)[:, None, None, None].expand(n, 1, 28, 28).contiguous()


def test_strip_size():
    img = strip(_frames(3), scale=2, pad=2)
    assert img.size == ((3 * (28 + 2) + 2) * 2, (28 + 2 * 2) * 2)
    img1 = strip(_frames(5), scale=1, pad=0)
    assert img1.size == (5 * 28, 28)


def test_png_bytes_is_a_png_of_the_same_size():
    img = strip(_frames(4), scale=3)
    data = png_bytes(img)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    back = Image.open(io.BytesIO(data))
    assert back.format == "PNG" and back.size == img.size


@pytest.mark.parametrize("n, frames", [(5, 8), (3, 4), (2, 2)])
def test_gif_bytes_is_an_animated_looping_gif_played_forward_then_back(n, frames):
    data = gif_bytes(_frames(n), scale=2)
    assert data[:6] in (b"GIF87a", b"GIF89a")
    img = Image.open(io.BytesIO(data))
    assert img.format == "GIF"
    assert img.is_animated and img.n_frames == frames
    assert img.size == (56, 56)
    assert img.info.get("loop") == 0
    assert img.info.get("duration") == 120


# --------------------------------------------------------------------------- paths between two images


def test_the_reference_leaves_out_both_ends_whether_they_are_among_it_or_not(moons):
    from vae_helpers import make_dataset

    from services.explore import reference_for

    x = moons.train_x[:40]
    data = make_dataset(x, n_test=0)  # 40 training images
    data = type(data)("toy", x[:0], data.train_y[:0], x, data.train_y, ["only"])  # no training split: the test one
    ref = reference_for(data, torch.stack([x[3], moons.test_x[0]]))  # A is one of them, B (an upload, say) is not
    assert ref.split == "test" and ref.images == "test" and ref.n_ends == 1
    assert 3 not in ref.index.tolist() and len(ref.x) == 39
    assert torch.equal(ref.x, x[ref.index])
    d = pixel_distance(torch.stack([x[3], moons.test_x[0]]), ref.x)
    assert (d > 0).all()  # A is measured to the nearest *other* image, as B is
    cut = reference_for(data, x[:2], limit=10)
    assert cut.index.tolist() == list(range(2, 10))  # the first `limit`, less the ends


def test_paths_between_measures_every_row_against_the_same_reference(moons, tiny_model):
    from services.explore import encode_all, paths_between, reference_for

    data = moons
    xa, xb = data.test_x[0], data.test_x[1]
    ref = reference_for(data, torch.stack([xa, xb]), limit=50)
    codes = encode_all(tiny_model, ref.x)
    assert codes.mean.shape == codes.std.shape == (50, 2)
    rows = paths_between([("VAE · t", tiny_model, codes.mean)], xa, xb, 5, "linear", ref, "fade")
    assert [r.title for r in rows] == ["VAE · t", "fade"] and rows[1].z is None
    key = "pixel distance to nearest training image"
    assert sorted(rows[0].metrics) == sorted([key, "distance to nearest training code", "log N(z; 0, I)"])
    assert list(rows[1].metrics) == [key]
    ends = pixel_distance(torch.stack([xa, xb]), ref.x).numpy()
    assert rows[1].metrics[key][[0, -1]] == pytest.approx(ends)  # the cross-fade's ends are A and B


def test_example_ends_are_the_moon_pair_on_moons_else_two_labels(moons):
    from services.explore import example_ends

    assert example_ends(moons) == moon_pair(moons.test_x, moons.extra["test_phase"])
    a, b = example_ends(dataclasses.replace(moons, name="digits"))
    assert a == 0 and moons.test_y[b] != moons.test_y[0] and (moons.test_y[1:b] == moons.test_y[0]).all()


def test_codes_are_kept_on_disk(moons, tiny_model, tmp_path, monkeypatch):
    import services.explore as explore

    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path))
    x = moons.train_x[:30]
    first = explore.encoded("tiny:1.0|moons|train", tiny_model, x)
    with monkeypatch.context() as mp:
        mp.setattr(tiny_model, "encode", lambda *a: pytest.fail("encoded again"))
        again = explore.encoded("tiny:1.0|moons|train", tiny_model, x)
    assert torch.equal(again.mean, first.mean) and torch.equal(again.std, first.std)
    assert [p.name.split("-")[0] for p in tmp_path.iterdir()] == ["codes"]
