"""services.mixture: the toy data, EM for a finite Gaussian mixture, and the tiny VAE's infinite mixture."""

from __future__ import annotations

import math

import pytest
import torch

from services import mixture


@pytest.fixture(scope="module")
def toy() -> mixture.Toy:
    return mixture.toy_data(n_train=1000, n_test=500)


@pytest.fixture(scope="module")
def trained(toy) -> mixture.TrainedVAE:
    return mixture.train_vae(toy.train, steps=400)


def test_toy_data_is_seeded_and_its_density_integrates_to_one(toy):
    again = mixture.toy_data(n_train=1000, n_test=500)
    assert torch.equal(toy.train, again.train) and torch.equal(toy.test, again.test)
    assert not torch.equal(toy.train, mixture.toy_data(n_train=1000, n_test=500, seed=1).train)
    assert float(torch.trapezoid(toy.density, toy.grid)) == pytest.approx(1.0, abs=1e-3)
    assert toy.train.min() > mixture.GRID[0] and toy.train.max() < mixture.GRID[1]


@pytest.mark.parametrize("k", [1, 3, 6])
def test_em_fits_k_components_and_never_lowers_the_likelihood(toy, k):
    gm = mixture.fit_gmm(toy.train, k)
    assert gm.k == k and gm.means.shape == gm.stds.shape == (k,)
    assert float(gm.weights.sum()) == pytest.approx(1.0) and bool((gm.stds > 0).all())
    steps = torch.tensor(gm.history)
    assert bool((steps.diff() >= -1e-9).all()), "an EM step lowered the log-likelihood"
    assert float(gm.log_prob(toy.train).mean()) == pytest.approx(gm.history[-1], abs=1e-6)
    if k > 1:
        assert gm.history[-1] > gm.history[0] + 0.01


def test_more_components_fit_the_skewed_toy_better(toy):
    ll = [float(mixture.fit_gmm(toy.train, k).log_prob(toy.test).mean()) for k in (1, 2, 4)]
    assert ll[0] < ll[1] < ll[2]


def test_mixture_components_sum_to_its_density_which_integrates_to_one(toy):
    gm = mixture.fit_gmm(toy.train, 3)
    parts = gm.components(toy.grid)
    assert parts.shape == (3, len(toy.grid))
    torch.testing.assert_close(parts.sum(0), gm.log_prob(toy.grid).exp())
    assert float(torch.trapezoid(parts.sum(0), toy.grid)) == pytest.approx(1.0, abs=1e-3)


def test_mixture_samples_have_the_right_shape_and_follow_the_seed(toy):
    gm = mixture.fit_gmm(toy.train, 2)
    a = gm.sample(3000, torch.Generator().manual_seed(5))
    assert a.shape == (3000,)
    assert torch.equal(a, gm.sample(3000, torch.Generator().manual_seed(5)))
    assert not torch.equal(a, gm.sample(3000, torch.Generator().manual_seed(6)))
    mean = float((gm.weights * gm.means).sum())
    assert float(a.mean()) == pytest.approx(mean, abs=0.15)


@pytest.mark.slow
def test_the_vae_density_integrates_to_one_over_the_grid(toy, trained):
    density = mixture.vae_log_prob(trained.model, toy.grid).exp()
    assert density.shape == toy.grid.shape
    assert float(torch.trapezoid(density, toy.grid)) == pytest.approx(1.0, abs=0.01)


@pytest.mark.slow
def test_the_quadrature_agrees_with_a_fine_trapezoid_in_z(toy, trained):
    model = trained.model
    z = torch.linspace(-8, 8, 8001, dtype=torch.float64)
    with torch.no_grad():
        mu = model.mu(z).double()
    prior = torch.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    x = toy.test[:50].double()
    cond = torch.exp(-0.5 * ((x[:, None] - mu) / model.sigma) ** 2) / (model.sigma * math.sqrt(2 * math.pi))
    reference = torch.trapezoid(prior * cond, z, dim=1)
    torch.testing.assert_close(mixture.vae_log_prob(model, x).exp(), reference, rtol=2e-2, atol=1e-4)


@pytest.mark.slow
def test_training_is_seeded_raises_the_elbo_and_the_bound_holds(toy, trained):
    again = mixture.train_vae(toy.train, steps=400)
    for a, b in zip(trained.model.parameters(), again.model.parameters(), strict=True):
        assert torch.equal(a, b)
    h = torch.tensor(trained.history)
    assert float(h[-50:].mean()) > float(h[:50].mean()) + 0.2
    elbo = mixture.vae_test_elbo(trained.model, toy.test)
    assert elbo < float(mixture.vae_log_prob(trained.model, toy.test).mean())


@pytest.mark.slow
def test_vae_samples_have_the_right_shape_and_follow_the_seed(trained):
    a = mixture.vae_sample(trained.model, 2000, torch.Generator().manual_seed(3))
    assert a.shape == (2000,) and a.dtype == torch.float64
    assert torch.equal(a, mixture.vae_sample(trained.model, 2000, torch.Generator().manual_seed(3)))
    assert not torch.equal(a, mixture.vae_sample(trained.model, 2000, torch.Generator().manual_seed(4)))


@pytest.mark.slow
def test_vae_components_sit_at_prior_quantiles(toy, trained):
    z, curves = mixture.vae_components(trained.model, toy.grid, 9)
    assert z.shape == (9,) and curves.shape == (9, len(toy.grid))
    assert float(z[4]) == pytest.approx(0.0, abs=1e-9) and bool((z.diff() > 0).all())
    # Each curve is one Gaussian weighted 1/n: together they integrate to ≈ 1.
    assert float(torch.trapezoid(curves.sum(0), toy.grid)) == pytest.approx(1.0, abs=0.02)


def test_em_reports_whether_it_converged_and_after_how_many_steps(toy):
    """Converged: the last EM step raised the training log-likelihood by less than tol; else it ran out."""
    done = mixture.fit_gmm(toy.train, 2)
    assert done.converged and done.steps == len(done.history) - 1 < 300
    assert done.history[-1] - done.history[-2] < done.tol == 1e-8
    short = mixture.fit_gmm(toy.train, 3, iterations=5)
    assert not short.converged and short.steps == 5
    assert short.history[-1] - short.history[-2] >= 1e-8


def test_the_mixture_uses_the_engines_gaussian_log_density():
    """One home for log N and the closed-form KL: vae.distributions (no LOG_2PI of its own)."""
    x, mean, std = torch.tensor([0.3, -1.0]), torch.tensor(0.5), torch.tensor(2.0)
    want = torch.distributions.Normal(mean, std).log_prob(x)
    assert torch.allclose(mixture._normal_log_pdf(x, mean, std), want)
    assert not hasattr(mixture, "LOG_2PI")
