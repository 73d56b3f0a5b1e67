"""The ELBO, its two terms, and the importance-weighted bound, all in nats per image.

ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || N(0, I))

The expectation is the Monte Carlo (SGVB) estimate with L samples z^(l) = mu + sigma * eps^(l);
the KL of two Gaussians is in closed form (Kingma & Welling 2013, appendix B).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .models import VAE

LOG_2PI = math.log(2 * math.pi)


def kl_per_dim(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) for each dimension: (N, D) -> (N, D)."""
    return 0.5 * (logvar.exp() + mu.pow(2) - 1.0 - logvar)


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    """Closed-form KL(q(z|x) || N(0, I)) = 1/2 sum_j (sigma_j^2 + mu_j^2 - 1 - log sigma_j^2): (N,)."""
    return kl_per_dim(mu, logvar).sum(dim=1)


def log_likelihood(x: Tensor, logits: Tensor, likelihood: str, log_sigma: Tensor | None = None) -> Tensor:
    """log p(x|z) summed over pixels: x and logits (..., C, H, W) -> (...).

    Bernoulli: -BCE computed from logits (stable for saturated outputs).
    Gaussian: log N(x; sigmoid(logits), sigma^2), i.e. -MSE / (2 sigma^2) plus its normaliser.
    """
    dims = (-3, -2, -1)
    if likelihood == "bernoulli":
        return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(dims)
    if likelihood == "gaussian":
        assert log_sigma is not None
        mean = torch.sigmoid(logits)
        n = x.shape[-1] * x.shape[-2] * x.shape[-3]
        sq = (x - mean).pow(2).sum(dims)
        return -0.5 * sq * torch.exp(-2 * log_sigma) - n * (log_sigma + 0.5 * LOG_2PI)
    raise ValueError(f"unknown likelihood {likelihood!r}")


def log_normal(z: Tensor, mu: Tensor | None = None, logvar: Tensor | None = None) -> Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dim; the standard normal if omitted."""
    if mu is None:
        return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)
    assert logvar is not None
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)


@dataclass
class ElboTerms:
    """Per-image terms, each (N,), in nats. ``loss`` is the scalar to minimise (batch mean)."""

    elbo: Tensor  # recon - kl (beta = 1: the bound itself)
    recon: Tensor  # E_q[log p(x|z)], Monte Carlo with L samples
    kl: Tensor  # KL(q(z|x) || N(0, I)), closed form; zeros for an AE
    loss: Tensor  # mean over the batch of -(recon - beta * kl)


def elbo_terms(
    model: VAE, x: Tensor, n_samples: int | None = None, beta: float | None = None, target: Tensor | None = None
) -> ElboTerms:
    """The SGVB estimate of the ELBO for a batch x (N, C, H, W).

    ``n_samples`` is L (default: the model's ``mc_samples``); ``beta`` weighs the KL in the
    loss only (default: the model's). ``target`` is what the likelihood scores (default x),
    e.g. a binarized copy of x.
    """
    cfg = model.config
    L = n_samples or cfg.mc_samples
    beta = cfg.beta if beta is None else beta
    target = x if target is None else target
    mu, logvar = model.encode(x)
    if logvar is None:  # AE: a deterministic code, no KL term
        recon = log_likelihood(target, model.decode_logits(mu), cfg.likelihood, model.log_sigma)
        kl = torch.zeros_like(recon)
    else:
        z = model.reparameterize(mu, logvar, n_samples=L)  # (L, N, D)
        logits = model.decode_logits(z.reshape(-1, z.shape[-1])).reshape(L, *x.shape)
        recon = log_likelihood(target, logits, cfg.likelihood, model.log_sigma).mean(0)
        kl = kl_divergence(mu, logvar)
    return ElboTerms(elbo=recon - kl, recon=recon, kl=kl, loss=-(recon - beta * kl).mean())


@torch.no_grad()
def iwae_bound(model: VAE, x: Tensor, k: int, chunk: int = 500) -> Tensor:
    """Importance-weighted bound log p(x) >= log 1/k sum_i p(x, z_i) / q(z_i|x) (Burda et al. 2015).

    x (N, C, H, W) -> (N,) in nats; tends to log p(x) as k grows; equals the ELBO's
    expectation at k = 1. ``chunk`` bounds the samples decoded at once per image.
    """
    if model.deterministic:
        raise ValueError("an AE has no q(z|x): the importance-weighted bound needs a VAE")
    cfg = model.config
    mu, logvar = model.encode(x)
    parts = []
    done = 0
    while done < k:
        m = min(chunk, k - done)
        z = model.reparameterize(mu, logvar, n_samples=m)  # (m, N, D)
        logits = model.decode_logits(z.reshape(-1, z.shape[-1])).reshape(m, *x.shape)
        log_w = (
            log_likelihood(x, logits, cfg.likelihood, model.log_sigma) + log_normal(z) - log_normal(z, mu, logvar)
        )  # (m, N)
        parts.append(torch.logsumexp(log_w, dim=0))
        done += m
    return torch.logsumexp(torch.stack(parts), dim=0) - math.log(k)
