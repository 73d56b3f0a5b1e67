"""vae.datasets.moons: fitting the moons' own renderer to a picture (phase, and whether it is a moon at all),
the documents' full-moon / half-moon pair, and the moons' registry entry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vae import data as vae_data
from vae.datasets import get
from vae.datasets.moons import MoonFit, fit_moons, load_moons, make_moons, moon_pair, moon_shapes, shade_moons


def clean(angle, radius=10.0, cx=14.0, cy=14.0, tilt=0.0) -> torch.Tensor:
    n = len(angle)
    args = [np.asarray(angle, dtype=np.float64)] + [np.full(n, v, dtype=np.float64) for v in (radius, cx, cy, tilt)]
    disk, lit, _, _ = moon_shapes(*args)
    return torch.from_numpy(shade_moons(disk, lit)).float().unsqueeze(1)


def test_fit_recovers_clean_moons_wherever_they_sit():
    angle = np.array([0.9, math.pi / 2, 2.3, 4.0, 3 * math.pi / 2, 5.4])
    x = torch.cat([clean(angle[:3], radius=9.0, cx=12.5, cy=15.0, tilt=0.3), clean(angle[3:], radius=11.0, cx=15.5)])
    fit = fit_moons(x)
    assert fit.phase.shape == fit.error.shape == (6,)
    err = torch.remainder(fit.phase.double() - torch.from_numpy(angle) + math.pi, 2 * math.pi) - math.pi
    assert err.abs().max() < math.radians(6), err
    assert (fit.error < 0.03).all() and fit.is_moon.all()
    assert fit.side_clear.all()  # half and crescent moons show their side plainly
    assert [fit.name(i) for i in (1, 4)] == ["first quarter", "last quarter"]


def test_lit_fraction_and_names_of_full_and_new_moons():
    fit = MoonFit(torch.tensor([math.pi, 0.0, 2.6]), torch.tensor([0.01, 0.01, 0.2]), torch.tensor([False] * 3))
    assert fit.lit.tolist() == pytest.approx([1.0, 0.0, (1 - math.cos(2.6)) / 2])
    assert fit.name(0) == "full moon" and fit.name(1) == "new moon"
    assert fit.name(2) == "gibbous"  # its side is not clear: no waxing/waning claimed
    assert fit.is_moon.tolist() == [True, True, False]
    assert fit.caption(2).endswith("(fit 0.200: no moon fits)") and fit.caption(0) == "full moon 100% lit (fit 0.010)"


def test_real_moons_fit_within_the_limit_and_blends_do_not():
    x, _ = make_moons(120, seed=3)  # craters, noise, random size, place and tilt
    fit = fit_moons(x)
    assert fit.is_moon.float().mean() >= 0.97, fit.error.max()
    # A cross-fade of a full moon and a half moon has two lit levels: no moon fits its midpoint.
    full, half = clean([math.pi]), clean([math.pi / 2])
    blend = fit_moons(torch.stack([(1 - t) * full[0] + t * half[0] for t in torch.linspace(0, 1, 5)]))
    assert blend.is_moon[[0, -1]].all() and not blend.is_moon[2]
    junk = fit_moons(
        torch.stack([torch.full((1, 28, 28), 0.5), torch.rand(1, 28, 28, generator=torch.Generator().manual_seed(0))])
    )
    assert not junk.is_moon.any()


def test_fit_is_deterministic_and_takes_no_pictures():
    x = clean([2.0, 4.5])
    a, b = fit_moons(x), fit_moons(x)
    assert torch.equal(a.phase, b.phase) and torch.equal(a.error, b.error)
    assert fit_moons(torch.zeros(0, 1, 28, 28)).phase.shape == (0,)


def test_the_pair_is_a_true_full_moon_and_the_half_moon_most_like_it():
    data = load_moons(n_train=20, n_test=200, seed=0)
    phase = data.extra["test_phase"]
    a, b = moon_pair(data.test_x, phase)
    assert float(phase[a]) == pytest.approx(math.pi, abs=1e-5) and float(phase[b]) == pytest.approx(
        math.pi / 2, abs=1e-5
    )
    halves = torch.nonzero((phase - math.pi / 2).abs() < 1e-5).flatten()
    d = (data.test_x[halves] - data.test_x[a]).flatten(1).norm(dim=1)
    assert b == int(halves[d.argmin()])
    with pytest.raises(ValueError, match="no exact full and half moons"):
        moon_pair(data.test_x[:1], torch.zeros(1))


def test_the_registry_entry_offers_the_fit_and_the_pair():
    spec = get("moons")
    assert spec is vae_data.spec("moons") and spec.fit is fit_moons
    data = load_moons(n_train=20, n_test=200, seed=0)
    assert spec.example_pair(data) == moon_pair(data.test_x, data.extra["test_phase"])
    assert spec.label_names == tuple(data.label_names) and spec.style == data.style == "plain"
    assert all(get(n).fit is None and get(n).example_pair is None for n in ("digits", "mnist", "fashion-mnist"))


def test_the_fit_steps_exactly_as_torch_adam_does(monkeypatch):
    """The fit's optimizer (vae.optim.adam, which leaves torch._dynamo unloaded) is torch's Adam step for step."""
    import vae.datasets.moons as moons

    x = load_moons(n_train=8, n_test=8).test_x[:4]
    ours = fit_moons(x, steps=20)
    monkeypatch.setattr(moons, "adam", torch.optim.Adam)
    theirs = fit_moons(x, steps=20)
    assert torch.equal(ours.phase, theirs.phase) and torch.equal(ours.error, theirs.error)
