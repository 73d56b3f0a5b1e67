import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal

from vae.config import ModelConfig
from vae.models import build_model
from vae.objectives import elbo_terms, iwae_bound, log_likelihood, log_normal, model_input

# --------------------------------------------------------------------------- likelihoods


def test_bernoulli_log_likelihood_is_minus_bce_from_probabilities():
    torch.manual_seed(4)
    logits = torch.randn(3, 1, 4, 5) * 3
    x = torch.rand(3, 1, 4, 5)
    x[0] = torch.bernoulli(x[0])  # binary and continuous targets
    ll = log_likelihood(x, logits, "bernoulli")
    assert ll.shape == (3,)
    bce = torch.stack([F.binary_cross_entropy(torch.sigmoid(lo), xi, reduction="sum") for lo, xi in zip(logits, x)])
    torch.testing.assert_close(ll, -bce, rtol=1e-5, atol=1e-4)


def test_bernoulli_log_likelihood_is_finite_for_saturated_logits():
    x = torch.tensor([1.0, 0.0, 1.0, 0.0]).view(1, 1, 2, 2)
    right = torch.tensor([100.0, -100.0, 100.0, -100.0]).view(1, 1, 2, 2)
    ll_right = log_likelihood(x, right, "bernoulli")
    ll_wrong = log_likelihood(x, -right, "bernoulli")
    assert torch.isfinite(ll_right).all() and torch.isfinite(ll_wrong).all()
    torch.testing.assert_close(ll_right, torch.zeros(1), atol=1e-6, rtol=0)
    torch.testing.assert_close(ll_wrong, torch.tensor([-400.0]), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("sigma", [0.05, 0.1, 1.0])
def test_gaussian_log_likelihood_matches_normal_density(sigma):
    torch.manual_seed(5)
    logits = torch.randn(4, 3, 2, 3)
    x = torch.rand(4, 3, 2, 3)
    log_sigma = torch.tensor(math.log(sigma))
    ll = log_likelihood(x, logits, "gaussian", log_sigma)
    expected = Normal(torch.sigmoid(logits), sigma).log_prob(x).sum((-3, -2, -1))
    torch.testing.assert_close(ll, expected, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_log_likelihood_broadcasts_over_samples(likelihood):
    torch.manual_seed(6)
    x = torch.bernoulli(torch.rand(3, 1, 4, 4))
    logits = torch.randn(5, 3, 1, 4, 4)  # (L, N, C, H, W)
    ls = torch.tensor(math.log(0.2))
    ll = log_likelihood(x, logits, likelihood, ls)
    assert ll.shape == (5, 3)
    torch.testing.assert_close(ll[2], log_likelihood(x, logits[2], likelihood, ls))


def test_unknown_likelihood_raises():
    with pytest.raises(ValueError):
        log_likelihood(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), "poisson")


# --------------------------------------------------------------------------- ELBO terms


def _toy(kind="vae", likelihood="bernoulli", **kw):
    torch.manual_seed(0)
    cfg = ModelConfig(kind=kind, image_shape=(1, 4, 4), hidden=(8,), latent_dim=2, likelihood=likelihood, **kw)
    return build_model(cfg).eval()


def test_elbo_is_recon_minus_kl(moons, tiny_model):
    x = moons.train_x[:8]
    t = elbo_terms(tiny_model, x)
    for v in (t.elbo, t.recon, t.kl):
        assert v.shape == (8,) and torch.isfinite(v).all()
    torch.testing.assert_close(t.elbo, t.recon - t.kl)
    torch.testing.assert_close(t.loss, -(t.recon - t.kl).mean())
    torch.testing.assert_close(t.kl, tiny_model.encode(x).kl())


def test_beta_weighs_the_kl_in_the_loss_only(moons):
    x = torch.bernoulli(torch.rand(6, 1, 4, 4))
    terms = {}
    for beta in (0.0, 1.0, 4.0, 10.0):  # the same weights (seeded init), only the config's beta differs
        terms[beta] = elbo_terms(_toy(beta=beta), x, generator=torch.Generator().manual_seed(11))
    ref = terms[1.0]
    for beta, t in terms.items():
        torch.testing.assert_close(t.elbo, ref.elbo)  # the bound itself does not change
        torch.testing.assert_close(t.kl, ref.kl)
        torch.testing.assert_close(t.loss, -(ref.recon - beta * ref.kl).mean())
    assert terms[10.0].loss > terms[0.0].loss  # KL > 0 here


def test_elbo_noise_comes_from_the_generator():
    model = _toy()
    x = torch.bernoulli(torch.rand(6, 1, 4, 4))
    a = elbo_terms(model, x, generator=torch.Generator().manual_seed(3)).recon
    torch.manual_seed(99)  # the global RNG plays no part
    b = elbo_terms(model, x, generator=torch.Generator().manual_seed(3)).recon
    c = elbo_terms(model, x, generator=torch.Generator().manual_seed(4)).recon
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_mc_samples_reduce_the_variance_of_the_recon_estimate():
    """L > 1 (mc_samples) averages L draws of z: the estimate's variance shrinks about L times."""
    model = _toy()
    x = torch.bernoulli(torch.rand(4, 1, 4, 4))
    with torch.no_grad():
        r1 = torch.stack([elbo_terms(model, x, n_samples=1).recon for _ in range(40)])
        r64 = torch.stack([elbo_terms(model, x, n_samples=64).recon for _ in range(40)])
        model_l64 = _toy(mc_samples=64)  # the config's mc_samples is the default L
        d64 = torch.stack([elbo_terms(model_l64, x).recon for _ in range(40)])
    assert r64.shape == (40, 4)
    assert (r64.var(0) < r1.var(0) / 8).all()
    assert (d64.var(0) < r1.var(0) / 8).all()
    # Same expectation: the means agree within noise.
    se = (r1.var(0) / 40 + r64.var(0) / 40).sqrt()
    assert ((r1.mean(0) - r64.mean(0)).abs() < 5 * se).all()


def test_elbo_terms_gradients_reach_every_parameter(moons, tiny_model):
    t = elbo_terms(tiny_model, moons.train_x[:16], n_samples=3)
    t.loss.backward()
    for name, p in tiny_model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_ae_has_zero_kl_and_deterministic_terms():
    model = _toy(kind="ae")
    x = torch.bernoulli(torch.rand(5, 1, 4, 4))
    a = elbo_terms(model, x, n_samples=3)
    b = elbo_terms(model, x)
    assert torch.equal(a.kl, torch.zeros(5))
    assert torch.equal(a.elbo, a.recon) and torch.equal(a.recon, b.recon)
    with torch.no_grad():
        expected = log_likelihood(x, model.decode_logits(model.encode(x).mean), "bernoulli")
    torch.testing.assert_close(a.recon, expected)


def test_model_input_is_the_one_binarization_rule(moons):
    """binarize set: a Bernoulli draw, fixed (seed 0) without a generator, fresh with one; whatever the
    likelihood. binarize unset: the images themselves."""
    x = moons.test_x[:8]
    for likelihood in ("bernoulli", "gaussian"):
        cfg = ModelConfig(image_shape=(1, 28, 28), hidden=(8,), latent_dim=2, likelihood=likelihood, binarize=True)
        a, b = model_input(x, cfg), model_input(x, cfg)
        assert torch.equal(a, b) and set(a.unique().tolist()) <= {0.0, 1.0}
        assert abs(a.mean().item() - x.mean().item()) < 0.05
        fresh = model_input(x, cfg, torch.Generator().manual_seed(1))
        assert not torch.equal(fresh, a) and set(fresh.unique().tolist()) <= {0.0, 1.0}
    assert model_input(x, ModelConfig(image_shape=(1, 28, 28), hidden=(8,), latent_dim=2)) is x


def test_iwae_refuses_an_ae():
    with pytest.raises(ValueError):
        iwae_bound(_toy(kind="ae"), torch.rand(2, 1, 4, 4), k=5)


# --------------------------------------------------------------------------- bounds vs exact log p(x)


def _exact_log_px(model, x, half_width=7.0, n=301):
    """log p(x) = log int p(x|z) N(z; 0, I) dz by quadrature over a dense 2-D grid of z."""
    g = torch.linspace(-half_width, half_width, n)
    z = torch.cartesian_prod(g, g)  # (n*n, 2)
    with torch.no_grad():
        logits = model.decode_logits(z)
        log_joint = torch.stack([log_likelihood(xi, logits, model.config.likelihood, model.log_sigma) for xi in x])
        log_joint = log_joint + log_normal(z)
    return torch.logsumexp(log_joint, dim=1) + 2 * math.log(float(g[1] - g[0]))


def _repeated(fn, x, reps):
    """reps independent estimates per image in one batched call: (mean, standard error), each (N,)."""
    with torch.no_grad():
        est = fn(x.repeat(reps, 1, 1, 1)).view(reps, len(x)).double()
    return est.mean(0), est.std(0) / math.sqrt(reps)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_elbo_below_iwae_below_exact_log_px(likelihood):
    """ELBO <= IWAE_10 <= IWAE_1000 <= log p(x), and IWAE_k -> log p(x) as k grows (Burda et al.)."""
    model = _toy(likelihood=likelihood, sigma=0.3)
    with torch.no_grad():  # a sharper decoder: the posterior is far from q, so the gaps are wide
        for p in model.decoder.parameters():
            p.mul_(3.0)
    torch.manual_seed(1)
    x = torch.rand(6, 1, 4, 4)
    if likelihood == "bernoulli":
        x = torch.bernoulli(x)

    log_px = _exact_log_px(model, x).double()
    # The quadrature has converged: a grid half as dense agrees.
    torch.testing.assert_close(_exact_log_px(model, x, n=151).double(), log_px, atol=5e-3, rtol=0)

    elbo, elbo_se = _repeated(lambda xs: elbo_terms(model, xs, n_samples=100).elbo, x, 100)
    iw1, iw1_se = _repeated(lambda xs: iwae_bound(model, xs, 1), x, 400)
    iw10, iw10_se = _repeated(lambda xs: iwae_bound(model, xs, 10), x, 200)
    iw1000, iw1000_se = _repeated(lambda xs: iwae_bound(model, xs, 1000, chunk=300), x, 20)

    def below(a, a_se, b, b_se=0.0):
        return (a <= b + 4 * (a_se**2 + b_se**2) ** 0.5 + 1e-3).all()

    assert below(elbo, elbo_se, iw10, iw10_se)
    assert below(iw10, iw10_se, iw1000, iw1000_se)
    assert below(iw1000, iw1000_se, log_px)
    # Not vacuous: the ELBO is clearly loose here, and more samples close the gap.
    assert (log_px - elbo).mean() > 0.5
    assert (log_px - iw1000).abs().mean() < 0.1
    assert (log_px - iw1000).abs().mean() < (log_px - iw10).abs().mean() < (log_px - elbo).abs().mean()
    # IWAE_1 is an unbiased estimate of the ELBO.
    assert ((iw1 - elbo).abs() < 4 * (iw1_se**2 + elbo_se**2).sqrt() + 1e-3).all()


def test_iwae_shape_and_chunking():
    model = _toy()
    x = torch.bernoulli(torch.rand(3, 1, 4, 4))
    a = iwae_bound(model, x, k=37, chunk=5)
    assert a.shape == (3,) and torch.isfinite(a).all()
