"""The batched importance-weighted bound (objectives.iwae_bound): equal to a plain per-image loop,
independent of its chunking, exact on a model whose posterior q(z|x) is exact, and an unbiased ELBO
at k = 1. Tiny seeded CPU models only."""

from __future__ import annotations

import math

import pytest
import torch

from vae.config import ModelConfig
from vae.distributions import DiagonalGaussian, log_normal
from vae.evaluate import evaluate
from vae.models import VAE, build_model
from vae.objectives import elbo_terms, iwae_bound, log_likelihood


def _model(arch: str, likelihood: str) -> VAE:
    hidden, side = ((8,), 8) if arch == "mlp" else ((4, 8), 28)  # conv takes 28, 32 or 64 pixels
    cfg = ModelConfig(
        arch=arch, image_shape=(1, side, side), hidden=hidden, latent_dim=3, likelihood=likelihood, sigma=0.3
    )
    model = build_model(cfg, generator=torch.Generator().manual_seed(0)).eval()
    with torch.no_grad():  # a sharper decoder: weights spread over many nats, a real test of the logsumexp
        for p in model.decoder.parameters():
            p.mul_(3.0)
    return model


def _images(likelihood: str, n: int = 5, side: int = 8) -> torch.Tensor:
    x = torch.rand(n, 1, side, side, generator=torch.Generator().manual_seed(1))
    return torch.bernoulli(x, generator=torch.Generator().manual_seed(2)) if likelihood == "bernoulli" else x


def _plain_loop(model: VAE, x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """The reference: one image at a time, its k samples as one (k, D) draw, written out from the
    definitions (objectives.log_likelihood, distributions.log_normal)."""
    out = []
    with torch.no_grad():
        for xi in x:
            q = model.encode(xi[None])
            eps = torch.randn(k, model.latent_dim, generator=generator)
            z = q.mean + q.std * eps  # (k, D)
            logits = model.decode_logits(z)
            lw = log_likelihood(xi, logits, model.config.likelihood, model.log_sigma)
            lw = lw + log_normal(z) - log_normal(z, q.mean, q.logvar)
            out.append(torch.logsumexp(lw.double(), 0) - math.log(k))
    return torch.stack(out)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_batched_equals_a_plain_loop_with_the_same_noise(arch, likelihood):
    model, k = _model(arch, likelihood), 60
    x = _images(likelihood, 5, model.config.image_shape[-1])
    ref = _plain_loop(model, x, k, torch.Generator().manual_seed(7))
    for kw in ({}, {"max_rows": 25}, {"max_rows": 130}):  # default; slices of one image; 2 images a call
        got = iwae_bound(model, x, k, generator=torch.Generator().manual_seed(7), **kw)
        assert got.shape == (len(x),) and got.dtype == torch.float32
        # 1e-4 nats, or float32 rounding (1e-6 relative) of the conv models' ~600-nat images.
        torch.testing.assert_close(got.double(), ref, atol=1e-4, rtol=1e-6)
    # Not vacuous: the images score differently.
    assert (ref.max() - ref.min()) > 1.0


def test_chunking_does_not_change_the_estimate():
    model, x, k = _model("mlp", "bernoulli"), _images("bernoulli", 7), 37
    runs = [
        iwae_bound(model, x, k, generator=torch.Generator().manual_seed(3), **kw)
        for kw in ({}, {"max_rows": 1}, {"max_rows": 10}, {"max_rows": 74}, {"chunk": 5}, {"memory_mb": 0.05})
    ]
    for r in runs[1:]:
        torch.testing.assert_close(r, runs[0], atol=1e-5, rtol=0)
    other = iwae_bound(model, x, k, generator=torch.Generator().manual_seed(4))
    assert not torch.allclose(other, runs[0])  # the noise does come from the generator


class ExactPosteriorVAE(VAE):
    """A linear-Gaussian model with a diagonal exact posterior, so every importance weight is p(x).

    p(z) = N(0, I_2), p(x|z) = N(c + W z, s^2 I_16) with W's columns orthogonal: the posterior is
    N(S W^T (x - c) / s^2, S) with S = (I + W^T W / s^2)^-1 diagonal, and p(x) = N(x; c, W W^T + s^2 I).
    The decoder's mean is sigmoid(logits), so decode_logits returns logit(c + W z)."""

    def __init__(self) -> None:
        cfg = ModelConfig(image_shape=(1, 4, 4), hidden=(4,), latent_dim=2, likelihood="gaussian", sigma=0.2)
        super().__init__(cfg)
        alternating = torch.tensor([1.0, -1.0]).repeat(8)
        self.register_buffer("W", 0.03 * torch.stack([torch.ones(16), alternating], dim=1))  # (16, 2)
        self.register_buffer("c", torch.linspace(0.4, 0.6, 16))
        s2 = self.config.sigma**2
        self.register_buffer("post_var", 1.0 / (1.0 + (self.W**2).sum(0) / s2))  # (2,), W^T W is diagonal

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        mu = ((x.flatten(1) - self.c) @ self.W) * self.post_var / self.config.sigma**2
        return DiagonalGaussian(mu, self.post_var.log().expand_as(mu))

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return torch.logit(self.c + z @ self.W.T).view(-1, 1, 4, 4)

    def log_px(self, x: torch.Tensor) -> torch.Tensor:
        W, c = self.W.double(), self.c.double()
        cov = W @ W.T + self.config.sigma**2 * torch.eye(16, dtype=torch.float64)
        return torch.distributions.MultivariateNormal(c, cov).log_prob(x.flatten(1).double())


def test_iwae_is_log_px_for_every_k_when_q_is_the_posterior():
    model = ExactPosteriorVAE().eval()
    assert abs(float(model.W[:, 0] @ model.W[:, 1])) < 1e-9  # the construction's premise
    x = 0.5 + 0.1 * torch.randn(6, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    log_px = model.log_px(x)
    for k in (1, 7, 500):
        got = iwae_bound(model, x, k, generator=torch.Generator().manual_seed(k), max_rows=100)
        torch.testing.assert_close(got.double(), log_px, atol=1e-4, rtol=0)
    # ... and the ELBO's expectation is log p(x) too (KL(q || posterior) = 0); its recon term alone
    # is Monte Carlo, so only up to that noise.
    t = elbo_terms(model, x, n_samples=20000, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(t.elbo.double(), log_px, atol=0.05, rtol=0)


def test_k1_is_an_unbiased_elbo():
    model, x = _model("mlp", "bernoulli"), _images("bernoulli", 3)
    reps = 3000
    iw1 = iwae_bound(model, x.repeat(reps, 1, 1, 1), 1, generator=torch.Generator().manual_seed(5))
    iw1 = iw1.view(reps, len(x)).double()
    with torch.no_grad():
        elbo = elbo_terms(model, x, n_samples=20000, generator=torch.Generator().manual_seed(6)).elbo.double()
    se = iw1.std(0) / math.sqrt(reps)
    assert ((iw1.mean(0) - elbo).abs() < 4 * se + 0.02).all()
    assert (iw1.std(0) > 0.1).all()  # not vacuous: single draws do vary


def test_evaluate_iwae_limit_covers_the_first_images():
    model, x = _model("mlp", "bernoulli"), _images("bernoulli", 12)
    calls = []
    res = evaluate(model, x, iwae_k=20, batch_size=5, iwae_limit=7, progress=lambda i, n: calls.append(i))
    assert res["n"] == 12 and res["iwae_n"] == 7 and res["iwae_k"] == 20 and math.isfinite(res["iwae"])
    assert calls == [5, 10, 12]
    full = evaluate(model, x, iwae_k=20, batch_size=5)
    assert full["iwae_n"] == 12 and full["elbo"] == res["elbo"]  # the ELBO covers all images either way
    none = evaluate(model, x, iwae_k=20, iwae_limit=0)
    assert none["iwae"] is None and none["iwae_n"] == 0 and none["iwae_k"] == 0
