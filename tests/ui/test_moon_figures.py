"""ui.moons: the latent planes' figure, the verdicts and the step table, from hand-made planes and fits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from services.moons import MoonFit, MoonPlane
from ui.moons import PLANE_POINTS, plane_figure, step_table, verdict


def plane(vae: bool) -> MoonPlane:
    codes = np.array([[0.0, 0.0], [2.0, 0.5], [4.0, 0.0]])
    path = np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 0.0]])
    return MoonPlane(
        codes=codes,
        data_phase=np.array([math.pi, 3 * math.pi / 4, math.pi / 2]),
        covs=np.tile(np.eye(2) * 0.25, (3, 1, 1)) if vae else None,
        path=path,
        end_covs=np.tile(np.eye(2), (2, 1, 1)) if vae else None,
        covered=np.array([3, 1, 2]) if vae else None,
        cover_phase=["full moon", "waxing gibbous", "first quarter"] if vae else None,
        cover_share=np.array([0.9, 0.6, 0.8]) if vae else None,
        nearest=np.array([0.0, 0.5, 0.0]),
        spacing=0.25,
    )


def fit(lit: list[float], err: list[float]) -> MoonFit:
    return MoonFit(torch.arccos(1 - 2 * torch.tensor(lit)), torch.tensor(err), torch.ones(len(lit), dtype=torch.bool))


def test_plane_figure_has_both_panels_with_ellipses_for_the_vae_only():
    fig = plane_figure([("VAE · v", plane(True)), ("AE · a", plane(False))])
    assert [a.text for a in fig.layout.annotations] == ["VAE · v", "AE · a"]
    names = [t.name for t in fig.data]
    assert names.count("±1σ of A and B") == 1 and names.count("±2σ of A and B") == 1  # the VAE's panel only
    assert names.count("path") == 2
    vae_path, ae_path = [t for t in fig.data if t.name == "path"]
    # Only the ends are written on the plot (numbers for every step crowd it); the hover names each step.
    assert list(vae_path.text) == ["A", "", "B"] and list(ae_path.text) == ["A", "", "B"]
    assert [h.split(":")[0] for h in vae_path.hovertext] == ["step A", "step 1", "step B"]
    assert "inside the 95% noise region of 1 data codes" in vae_path.hovertext[1]
    assert "2.0× the codes' usual spacing" in ae_path.hovertext[1]


def test_plane_figure_draws_an_even_sample_of_many_codes():
    """5,000 codes a panel were 10,000 SVG points for the browser to style on every page open: at most
    PLANE_POINTS a panel are drawn, spread over the whole data (every phase keeps its points)."""
    n = 5 * PLANE_POINTS
    big = plane(True)
    big.codes = np.stack([np.arange(n, dtype=float), np.zeros(n)], 1)
    big.data_phase = np.linspace(0, 2 * math.pi, n, endpoint=False)
    big.covs = np.tile(np.eye(2) * 0.25, (n, 1, 1))
    fig = plane_figure([("VAE · v", big)])
    points = [t for t in fig.data if t.mode == "markers"]
    xs = np.concatenate([np.asarray(t.x) for t in points])
    assert len(xs) == PLANE_POINTS
    assert xs.min() == 0 and xs.max() == n - 1  # from the first code to the last, not the first PLANE_POINTS
    assert len([t for t in points if len(t.x)]) == 8  # all eight phases drawn


def test_verdicts_and_step_table():
    good, bad = fit([1.0, 0.8, 0.5], [0.03, 0.05, 0.03]), fit([1.0, 0.75, 0.5], [0.03, 0.13, 0.03])
    assert verdict("VAE · v", good, "vae").startswith("**VAE · v**: 1 of 1 in-between frames fit a moon")
    assert "its midpoint fits no moon (fit 0.130)" in verdict("AE · a", bad, "ae")
    table = step_table([("VAE · v", good), ("AE · a", bad)], [("VAE · v", plane(True)), ("AE · a", plane(False))])
    assert table["step"] == ["A", "1", "B"]
    assert table["VAE: covered by"][1] == "1; 60% waxing gibbous"
    assert table["AE: nearest code"][1] == "2.0× the usual spacing"
    assert table["AE frame"][1].endswith("% · no moon")


def test_planes_and_fits_read_back_from_disk_as_they_were():
    from services.disk_cache import from_arrays, to_arrays

    for p in (plane(True), plane(False)):  # the AE's plane has None fields
        back = from_arrays(MoonPlane, to_arrays(p))
        for name, value in vars(p).items():
            got = getattr(back, name)
            if isinstance(value, np.ndarray):
                assert np.array_equal(got, value) and got.dtype == value.dtype
            else:
                assert got == value  # None, a list of phase names, a float
    f = fit([1.0, 0.5], [0.03, 0.2])
    back = from_arrays(MoonFit, to_arrays(f))
    assert torch.equal(back.phase, f.phase) and torch.equal(back.side_clear, f.side_clear)


def test_frame_fits_are_kept_on_disk(tmp_path, monkeypatch):
    import ui.moons as moons

    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path))
    frames = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0)).numpy()
    first = moons.fit_frames.__wrapped__(frames)  # the function under st.cache_data
    monkeypatch.setattr(moons, "fit_moons", lambda *a: pytest.fail("fitted again"))
    again = moons.fit_frames.__wrapped__(frames)  # a new session
    assert all(np.array_equal(a, b) for a, b in zip(again, first))
    assert [p.name.split("-")[0] for p in tmp_path.iterdir()] == ["moonfit"]
