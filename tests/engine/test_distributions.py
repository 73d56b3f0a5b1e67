"""The posterior object q(z|x) = N(mu, diag sigma^2) and the Gaussian log-densities."""

import math

import pytest
import torch
from torch.distributions import Normal

from vae.distributions import DiagonalGaussian, kl_per_dim, log_normal


def _q(seed: int = 1, n: int = 6, d: int = 4) -> DiagonalGaussian:
    g = torch.Generator().manual_seed(seed)
    return DiagonalGaussian(torch.randn(n, d, generator=g) * 2, torch.randn(n, d, generator=g) * 2)


def test_kl_is_zero_for_the_prior():
    assert torch.equal(DiagonalGaussian(torch.zeros(3, 5), torch.zeros(3, 5)).kl(), torch.zeros(3))


def test_kl_known_value_1d():
    kl = DiagonalGaussian(torch.tensor([[2.0]]), torch.tensor([[1.0]])).kl()
    torch.testing.assert_close(kl, torch.tensor([0.5 * (math.e + 4 - 1 - 1)]))


def test_kl_sums_dimensions_and_is_nonnegative():
    q = _q()
    per_dim = q.kl_per_dim()
    assert per_dim.shape == (6, 4) and (per_dim >= 0).all()
    torch.testing.assert_close(q.kl(), per_dim.sum(1))
    torch.testing.assert_close(per_dim, kl_per_dim(q.mean, q.logvar))


def test_kl_matches_monte_carlo():
    """Closed form against E_q[log q(z|x) - log p(z)] with many samples of z ~ q."""
    q = DiagonalGaussian(
        torch.tensor([[0.3, -1.2, 2.0], [0.0, 0.5, -0.7]]), torch.tensor([[-1.0, 0.4, 0.0], [1.2, -2.0, 0.3]])
    )
    L = 200_000
    z = q.sample(torch.Generator().manual_seed(2), n_samples=L)
    diff = q.log_prob(z) - log_normal(z)  # (L, N)
    mc, se = diff.mean(0), diff.std(0) / math.sqrt(L)
    assert (q.kl() - mc).abs().le(4 * se + 1e-4).all(), (q.kl(), mc, se)


def test_log_prob_and_log_normal_match_torch_distributions():
    q = _q(3, 5, 3)
    z = torch.randn(5, 3, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(q.log_prob(z), Normal(q.mean, q.std).log_prob(z).sum(-1))
    torch.testing.assert_close(log_normal(z), Normal(0.0, 1.0).log_prob(z).sum(-1))


def test_sample_is_the_reparameterization_from_the_generator():
    """z = mu + sigma * eps with eps drawn from the generator alone (the global RNG plays no part)."""
    q = _q()
    eps = torch.randn(q.mean.shape, generator=torch.Generator().manual_seed(7))
    torch.manual_seed(123)
    z = q.sample(torch.Generator().manual_seed(7))
    torch.testing.assert_close(z, q.mean + torch.exp(0.5 * q.logvar) * eps)
    assert q.sample(torch.Generator().manual_seed(7), n_samples=3).shape == (3, 6, 4)
    assert not torch.equal(q.sample(torch.Generator().manual_seed(8)), z)


def test_sample_moments():
    q = DiagonalGaussian(torch.tensor([[1.0, -2.0]]), torch.tensor([[0.0, math.log(0.25)]]))
    z = q.sample(torch.Generator().manual_seed(0), n_samples=200_000)  # (L, 1, 2)
    torch.testing.assert_close(z.mean(0)[0], torch.tensor([1.0, -2.0]), atol=0.01, rtol=0)
    torch.testing.assert_close(z.std(0)[0], torch.tensor([1.0, 0.5]), atol=0.01, rtol=0)


def test_gradients_flow_to_mean_and_logvar():
    mu = torch.zeros(2, 3, requires_grad=True)
    logvar = torch.zeros(2, 3, requires_grad=True)
    DiagonalGaussian(mu, logvar).sample(torch.Generator().manual_seed(0), n_samples=3).pow(2).sum().backward()
    assert mu.grad.abs().sum() > 0 and logvar.grad.abs().sum() > 0


def test_a_point_mass_has_no_noise_no_kl_and_no_density():
    mu = torch.randn(2, 3, generator=torch.Generator().manual_seed(0))
    q = DiagonalGaussian(mu)
    assert q.deterministic and torch.equal(q.std, torch.zeros(2, 3))
    assert torch.equal(q.sample(torch.Generator().manual_seed(1)), mu)
    assert torch.equal(q.sample(n_samples=4), mu.expand(4, 2, 3))
    assert torch.equal(q.kl(), torch.zeros(2))
    with pytest.raises(ValueError):
        q.log_prob(mu)


def test_indexing_and_device():
    q = _q()
    sub = q[1:3]
    assert len(sub) == 2 and torch.equal(sub.mean, q.mean[1:3]) and torch.equal(sub.logvar, q.logvar[1:3])
    assert torch.equal(q.to("cpu").std, q.std)
