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

from .config import ModelConfig
from .distributions import LOG_2PI, kl_per_dim, log_normal  # noqa: F401 (re-exported)
from .models import VAE

BINARIZE_SEED = 0


def model_input(x: Tensor, config: ModelConfig, generator: torch.Generator | None = None) -> Tensor:
    """The images a model encodes and its likelihood scores: x (N, C, H, W) in [0, 1] itself, or,
    when ``config.binarize`` is set (whatever the likelihood), a Bernoulli draw of it.

    The one binarization rule: training passes its own ``generator`` (a fresh draw per batch, as in
    the IWAE paper); evaluation, scoring and the app pass none and get one fixed draw (seed 0), so
    uploads and test images are scored alike and every evaluation sees the same binary images.
    """
    if not config.binarize:
        return x
    if generator is None:
        generator = torch.Generator(device=x.device).manual_seed(BINARIZE_SEED)
    return torch.bernoulli(x, generator=generator)


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


def _decoded_log_likelihood(model: VAE, x: Tensor, z: Tensor) -> Tensor:
    """log p(x|z) for codes z (L, N, D) of the images x (N, C, H, W): (L, N)."""
    logits = model.decode_logits(z.reshape(-1, z.shape[-1])).reshape(z.shape[0], *x.shape)
    return log_likelihood(x, logits, model.config.likelihood, model.log_sigma)


@dataclass
class ElboTerms:
    """Per-image terms, each (N,), in nats. ``loss`` is the scalar to minimise (batch mean)."""

    elbo: Tensor  # recon - kl (beta = 1: the bound itself)
    recon: Tensor  # E_q[log p(x|z)], Monte Carlo with L samples
    kl: Tensor  # KL(q(z|x) || N(0, I)), closed form; zeros for an AE
    loss: Tensor  # mean over the batch of -(recon - beta * kl)


def elbo_terms(
    model: VAE, x: Tensor, n_samples: int | None = None, generator: torch.Generator | None = None
) -> ElboTerms:
    """The SGVB estimate of the ELBO for a batch x (N, C, H, W), as the model scores it.

    ``n_samples`` is L (default: the model's ``mc_samples``); the noise eps comes from ``generator``.
    The loss weighs the KL by the model's beta. An AE's code is a point mass: one decode, KL 0.
    """
    cfg = model.config
    q = model.encode(x)
    L = 1 if q.deterministic else (n_samples or cfg.mc_samples)
    recon = _decoded_log_likelihood(model, x, q.sample(generator, n_samples=L)).mean(0)
    kl = q.kl()
    return ElboTerms(elbo=recon - kl, recon=recon, kl=kl, loss=-(recon - cfg.beta * kl).mean())


@torch.no_grad()
def iwae_bound(model: VAE, x: Tensor, k: int, chunk: int = 500, generator: torch.Generator | None = None) -> Tensor:
    """Importance-weighted bound log p(x) >= log 1/k sum_i p(x, z_i) / q(z_i|x) (Burda et al. 2015).

    x (N, C, H, W) -> (N,) in nats; tends to log p(x) as k grows; its expectation at k = 1 is the
    ELBO. ``chunk`` bounds the samples decoded at once per image.
    """
    if model.deterministic:
        raise ValueError("an AE has no q(z|x): the importance-weighted bound needs a VAE")
    q = model.encode(x)
    parts = []
    done = 0
    while done < k:
        m = min(chunk, k - done)
        z = q.sample(generator, n_samples=m)  # (m, N, D)
        log_w = _decoded_log_likelihood(model, x, z) + log_normal(z) - q.log_prob(z)  # (m, N)
        parts.append(torch.logsumexp(log_w, dim=0))
        done += m
    return torch.logsumexp(torch.stack(parts), dim=0) - math.log(k)
