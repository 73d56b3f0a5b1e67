"""services.moons: the story a path tells and the latent plane of the argument (fitting a moon to a picture:
tests/engine/test_data_moons.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from services.explore import latent_path
from services.moons import MoonFit, _chi2_95, fit_moons, moon_plane, story
from vae.checkpoint import load_checkpoint
from vae.datasets.moons import moon_pair

ROOT = Path(__file__).resolve().parents[2]


def test_story_of_a_path():
    def fit(lit, err=0.02):
        phase = torch.arccos(1 - 2 * torch.tensor(lit))
        return MoonFit(phase, torch.full((len(lit),), err), torch.ones(len(lit), dtype=torch.bool))

    s = story(fit([1.0, 0.9, 0.8, 0.7, 0.6, 0.5]))
    assert s["all_moons"] and s["in_order"] and s["largest_step"] == pytest.approx(0.2)
    assert (s["waxing"], s["waning"]) == (4, 0)  # arccos gives phases in [0, pi]: waxing
    assert not story(fit([1.0, 0.6, 0.9, 0.5]))["in_order"]
    assert story(fit([1.0, 0.99, 0.995, 0.5]))["in_order"]  # a step back of 0.005 is rounding
    assert story(fit([1.0, 0.98, 0.5]))["largest_step"] == pytest.approx(0.96)
    assert not story(fit([1.0, 0.5], err=0.2))["all_moons"]


@pytest.mark.parametrize("d, expected", [(2, 5.991), (8, 15.507), (16, 26.296), (32, 46.194)])
def test_chi2_quantile(d, expected):
    assert _chi2_95(d) == pytest.approx(expected, rel=1e-4)


def test_moon_plane_of_a_vae_and_of_an_ae():
    g = torch.Generator().manual_seed(0)
    mean = torch.cat([torch.randn(100, 4, generator=g) * 0.3, torch.randn(100, 4, generator=g) * 0.3 + 2])
    std = torch.full((200, 4), 0.5)
    phase = torch.cat([torch.full((100,), math.pi), torch.full((100,), math.pi / 2)])
    path = torch.stack([torch.full((4,), 2.0 * t) for t in (0.0, 0.5, 1.0)])  # cluster to cluster, |b - a| = 4
    vae = moon_plane(mean, std, phase, path, end_std=torch.full((2, 4), 0.5))
    assert vae.path[0].tolist() == pytest.approx([0, 0]) and vae.path[-1].tolist() == pytest.approx([4.0, 0], abs=1e-9)
    assert vae.codes.shape == (200, 2) and vae.covs.shape == (200, 2, 2) and vae.end_covs.shape == (2, 2, 2)
    # A plane of unit vectors: an isotropic sigma of 0.5 stays 0.25 in variance.
    np.testing.assert_allclose(vae.covs[0], np.eye(2) * 0.25, atol=1e-9)
    assert vae.covered[0] > 50 and vae.covered[-1] > 50  # the ends lie in their clusters' noise
    assert vae.cover_phase[0] == "full moon" and vae.cover_phase[-1] == "first quarter"
    assert vae.cover_share[0] > 0.99 and 0 < vae.covered[1] < vae.covered[0]  # the midpoint: a few clouds' tails
    ae = moon_plane(mean, None, phase, path)
    assert ae.covs is None and ae.covered is None and ae.cover_phase is None
    assert ae.nearest[1] > ae.spacing  # nothing lives between the clusters of an AE
    np.testing.assert_allclose(ae.codes, vae.codes)


@pytest.mark.skipif(
    not all((ROOT / "checkpoints" / f"{n}.safetensors").exists() for n in ("moons-vae", "moons-ae")),
    reason="the moons checkpoints are not committed",
)
def test_the_committed_pair_tells_the_moon_story():
    from vae.data import load_dataset

    data = load_dataset("moons")
    a, b = moon_pair(data.test_x, data.extra["test_phase"])
    fits = {}
    for name in ("moons-vae", "moons-ae"):
        _, frames = latent_path(
            load_checkpoint(ROOT / "checkpoints" / f"{name}.safetensors").model, data.test_x[a], data.test_x[b], 9
        )
        fits[name] = fit_moons(frames)
    vae, ae = story(fits["moons-vae"]), fits["moons-ae"]
    assert vae["all_moons"] and vae["in_order"], vae  # every VAE frame a moon, the lit fraction one way
    assert vae["waxing"] >= 3 and vae["waning"] == 0, vae  # full -> waxing gibbous -> first quarter
    assert float(fits["moons-vae"].lit[0]) > 0.9 and float(fits["moons-vae"].lit[-1]) < 0.6
    assert not bool(ae.is_moon[4]), ae.error  # the AE's midpoint: no moon fits it
    # Whose noise covers each step of the VAE's path: the phases between A and B, in order.
    model = load_checkpoint(ROOT / "checkpoints" / "moons-vae.safetensors").model
    z, _ = latent_path(model, data.test_x[a], data.test_x[b], 9)
    with torch.no_grad():
        q = model.encode(data.train_x[:5000])
    plane = moon_plane(q.mean, q.std, data.extra["train_phase"][:5000], z)
    order = ["full moon", "waxing gibbous", "first quarter"]
    assert set(plane.cover_phase) <= set(order), plane.cover_phase
    ranks = [order.index(p) for p in plane.cover_phase]
    assert ranks == sorted(ranks) and ranks[0] == 0 and ranks[-1] == 2
