"""services.sliders: the sliders' order and ranges, the start codes and traversals (and ui.sliders' labels)."""

import math

import pytest
import torch

from services import sliders as sl


def test_dimensions_are_ordered_by_score_and_inactive_ones_split_off():
    score = torch.tensor([0.005, 2.0, 0.3, 0.01, 1.5])
    assert sl.order_dimensions(score) == ([1, 4, 2], [3, 0])
    assert sl.order_dimensions(torch.zeros(3)) == ([0, 1, 2], [])  # none active: show them all


@pytest.mark.parametrize(("span", "step"), [(8.0, 0.05), (17.7, 0.1), (0.5, 0.002), (30.0, 0.1), (1e-3, 5e-6)])
def test_nice_step(span, step):
    assert sl.nice_step(span) == pytest.approx(step)
    assert span / sl.nice_step(span) >= sl.POSITIONS


def test_a_vae_spans_the_prior_and_an_ae_what_its_codes_cover():
    codes = torch.tensor([[-13.0, 0.2, 5.0], [3.5, 0.4, 5.0], [0.0, 0.3, 5.0]])
    assert sl.slider_axes(3, codes, deterministic=False) == [sl.Axis(-4.0, 4.0, 0.05)] * 3
    assert sl.slider_axes(2) == [sl.Axis(-4.0, 4.0, 0.05)] * 2  # no codes: the prior's range
    axes = sl.slider_axes(3, codes, deterministic=True)
    for a, lo, hi in zip(axes, codes.min(0).values.tolist(), codes.max(0).values.tolist()):
        assert a.lo < lo and a.hi > hi  # padded ...
        assert a.hi - a.lo <= (max(hi - lo, 1e-3)) * (1 + 2 * sl.PAD) + 2 * a.step  # ... a little
        assert (a.hi - a.lo) / a.step >= sl.POSITIONS
        assert math.isclose(a.lo / a.step, round(a.lo / a.step), abs_tol=1e-6)  # on the step grid
    assert axes[0].lo == pytest.approx(-13.9) and axes[0].hi == pytest.approx(4.4) and axes[0].step == 0.1
    assert axes[2].lo < 5.0 < axes[2].hi  # a constant dimension still moves


def test_start_codes_of_a_vae():
    axes = sl.slider_axes(4)
    assert sl.start_code("mean", axes).tolist() == [0.0] * 4
    a, b = sl.start_code("random", axes, seed=1), sl.start_code("random", axes, seed=2)
    assert not torch.equal(a, b) and torch.equal(a, sl.start_code("random", axes, seed=1))
    big = torch.tensor([9.0, -9.0, 0.5, 0.0])
    assert sl.start_code("image", axes, image_code=big).tolist() == [4.0, -4.0, 0.5, 0.0]  # clamped into range
    with pytest.raises(ValueError):
        sl.start_code("image", axes)
    with pytest.raises(ValueError):
        sl.start_code("prior", axes)


def test_start_codes_of_an_ae_come_from_its_codes():
    gen = torch.Generator().manual_seed(0)
    codes = torch.randn(500, 3, generator=gen) * torch.tensor([1.0, 3.0, 0.1]) + torch.tensor([-6.0, 2.0, 10.0])
    axes = sl.slider_axes(3, codes, deterministic=True)
    mean = sl.start_code("mean", axes, codes, deterministic=True)
    assert mean.tolist() == pytest.approx(codes.mean(0).tolist(), abs=1e-5)
    draws = torch.stack([sl.start_code("random", axes, codes, deterministic=True, seed=s) for s in range(300)])
    assert draws.mean(0).tolist() == pytest.approx(codes.mean(0).tolist(), abs=0.5)
    assert ((draws >= torch.tensor([a.lo for a in axes])) & (draws <= torch.tensor([a.hi for a in axes]))).all()


def test_names_and_labels_say_kl_for_a_vae_and_nothing_of_a_prior_for_an_ae():
    """The sentences live in ui.sliders (services hold no UI text); dimensions are numbered z1 ... zD."""
    from ui import sliders as ui_sl

    assert ui_sl.start_names(False)["mean"] == "prior mean"
    ae = ui_sl.start_names(True)
    assert ae == {"mean": "mean code", "random": "random code", "image": "encoding of a test image"}
    assert ui_sl.slider_label(3, 2.468, False) == "z4  ·  KL 2.47 nats"
    assert ui_sl.slider_label(3, 12.7, True) == "z4  ·  var 12.70"
    assert ui_sl.slider_label(0, 1.0, True).startswith("z1 ")
    for text in [*ae.values(), ui_sl.slider_label(0, 1.0, True), ui_sl.fold_note(2, True)]:
        assert "KL" not in text and "prior" not in text
    assert ui_sl.fold_note(7, False).startswith("7 inactive dimensions (KL ≤ 0.01 nats")


def test_the_inactive_threshold_is_the_active_unit_rule_of_the_engine():
    from vae.evaluate import ACTIVE_UNIT_NATS

    assert sl.INACTIVE is ACTIVE_UNIT_NATS


def test_traversals_sweep_each_dimension_around_the_code():
    z = torch.tensor([0.5, -1.0, 2.0])
    axes = [sl.Axis(-2.0, 2.0, 0.05), sl.Axis(-10.0, 6.0, 0.1), sl.Axis(-1.0, 1.0, 0.01)]
    assert sl.traversal_values(axes[1], False, 5).tolist() == [-3.0, -1.5, 0.0, 1.5, 3.0]
    assert sl.traversal_values(axes[1], True, 5).tolist() == [-10.0, -6.0, -2.0, 2.0, 6.0]
    grid = sl.traversal_grid(z, [2, 0], axes, deterministic=True, steps=3)
    assert grid.shape == (6, 3)
    assert grid[:3, 2].tolist() == [-1.0, 0.0, 1.0] and grid[3:, 0].tolist() == [-2.0, 0.0, 2.0]
    assert grid[:3, :2].tolist() == [[0.5, -1.0]] * 3 and grid[3:, 1:].tolist() == [[-1.0, 2.0]] * 3  # others held
    assert sl.traversal_grid(z, [], axes, False, 3).shape == (0, 3)


def test_the_posterior_band_is_mu_plus_minus_sigma_in_slider_order():
    mean, std = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([0.1, 0.3, 0.05])
    bands = sl.posterior_bands(mean, std, [2, 0, 1])
    assert [b.j for b in bands] == [2, 0, 1]
    assert bands[0].span == pytest.approx((1.95, 2.05))
    assert bands[2].mu == pytest.approx(-1.0) and bands[2].sigma == pytest.approx(0.3)
    from ui.sliders import band_label

    assert band_label(bands[1]) == "μ +0.50 ± 0.10"


def test_a_posterior_draw_is_reproducible_and_stays_near_the_mean():
    mean, std = torch.linspace(-2, 2, 64), torch.full((64,), 0.2)
    axes = sl.slider_axes(64)
    a, b = sl.posterior_draw(mean, std, axes, seed=3), sl.posterior_draw(mean, std, axes, seed=3)
    assert torch.equal(a, b)
    assert not torch.equal(a, sl.posterior_draw(mean, std, axes, seed=4))
    assert not torch.allclose(a, mean)
    assert ((a - mean).abs() <= 5 * std).all()
    eps = (a - mean) / std  # standardised: roughly N(0, 1)
    assert abs(float(eps.mean())) < 0.5 and 0.6 < float(eps.std()) < 1.4
    far = sl.posterior_draw(torch.full((2,), 3.99), torch.ones(2), sl.slider_axes(2), seed=0)
    assert (far.abs() <= sl.PRIOR_RANGE).all()  # inside the sliders' ranges
