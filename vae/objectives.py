"""The ELBO, its two terms, and the importance-weighted bound, all in nats per image.

ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || N(0, I))

The expectation is the Monte Carlo (SGVB) estimate with L samples z^(l) = mu + sigma * eps^(l);
the KL of two Gaussians is in closed form (Kingma & Welling 2013, appendix B).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import ModelConfig
from .distributions import LOG_2PI, kl_per_dim, log_normal  # noqa: F401 (re-exported)
from .fast_decode import fast_decoder
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


# Default budget for one decoder call's two largest activations (see iwae_bound): a few MB, so that a
# chunk stays in cache. Measured on a 2-core EPYC (IWAE-5000): the 784-400-20 MLP decodes 155k codes/s at
# 500 rows a call (3 MB) against 114k at 20,000 rows; the MNIST conv model 15k codes/s at 64 rows against
# 9.2k at 5,000.
IWAE_MEMORY_MB = 3.0


def _decoder_row_floats(model: VAE, like: Tensor) -> int:
    """The largest tensor (in elements) that decoding one code creates: the decoder's widest
    activation or its logits, whichever is bigger. One probe decode of a single zero code, with
    forward hooks on every module, so subclasses and conv decoders are sized alike."""
    widest = [int(math.prod(like.shape[1:]))]

    def hook(_module, _inputs, out) -> None:
        if isinstance(out, Tensor):
            widest.append(out[0].numel() if out.dim() else 1)

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        model.decode_logits(torch.zeros(1, model.latent_dim, dtype=like.dtype, device=like.device))
    finally:
        for h in handles:
            h.remove()
    return max(widest)


def _softplus_sum(logits: Tensor, group: int = 16) -> Tensor:
    """sum_j softplus(l_j) over the last dim: (..., P) -> (...).

    softplus(l) = max(l, 0) + log(1 + e^-|l|); the logs are taken of products of ``group`` factors
    in (1, 2] (at most 2^16, exact enough in float32: ~1e-6 relative per product), so one log per
    16 pixels instead of one log1p each; ~1.4x faster than F.softplus on a 2-core EPYC, and within
    float32 summation error of it. Falls back to F.softplus when P is not a multiple of ``group``.
    """
    p = logits.shape[-1]
    if p % group:
        return F.softplus(logits).sum(-1)
    factors = logits.abs().neg_().exp_().add_(1.0)  # 1 + e^-|l| in (1, 2]
    logs = factors.view(*logits.shape[:-1], p // group, group).prod(-1).log_().sum(-1)
    return logits.clamp(min=0).sum(-1) + logs


def _chunk_log_likelihood(x: Tensor, logits: Tensor, likelihood: str, log_sigma: Tensor) -> Tensor:
    """log p(x|z) for g images x (g, P) and their decoded codes, logits (g, m, P): (g, m).

    Never materialises x broadcast to the logits' shape. Bernoulli: log p = sum_j x_j l_j - softplus(l_j)
    (-BCE with logits, exact for any x in [0, 1]); the first sum is one batched matmul. Gaussian:
    -||x - sigmoid(l)||^2 / (2 sigma^2) minus the normaliser, squared differences formed in place.
    """
    if likelihood == "bernoulli":
        xl = torch.bmm(logits, x.unsqueeze(-1)).squeeze(-1)  # (g, m)
        return xl - _softplus_sum(logits)
    if likelihood == "gaussian":
        sq = torch.sigmoid(logits).sub_(x.unsqueeze(1)).square_().sum(-1)  # (g, m)
        n = x.shape[-1]
        return -0.5 * sq * torch.exp(-2 * log_sigma) - n * (log_sigma + 0.5 * LOG_2PI)
    raise ValueError(f"unknown likelihood {likelihood!r}")


def _log_weights(
    model: VAE, x: Tensor, mu: Tensor, logvar: Tensor, eps: Tensor, decode: Callable[[Tensor], Tensor]
) -> Tensor:
    """log p(x, z) - log q(z|x) at z = mu + sigma * eps, for g images: x (g, P), mu and logvar (g, D),
    eps (g, m, D) -> (g, m) in float64. ``decode`` is ``model.decode_logits`` or its fast equal.

    log p(z) - log q(z|x) = -|z|^2/2 + |eps|^2/2 + sum(logvar)/2: the log 2 pi terms cancel and
    (z - mu)^2 / sigma^2 is eps^2 exactly, so no division by a tiny sigma. These sums are over D
    only, so they are formed in float64 for free; the pixel sums stay float32 (relative error
    ~1e-7 of a few hundred nats, far below the Monte Carlo error of the bound).
    """
    g, m, d = eps.shape
    z = mu.unsqueeze(1) + torch.exp(0.5 * logvar).unsqueeze(1) * eps  # (g, m, D)
    logits = decode(z.reshape(g * m, d)).reshape(g, m, -1)  # (g, m, P)
    log_px_z = _chunk_log_likelihood(x, logits, model.config.likelihood, model.log_sigma).double()
    zd, ed = z.double(), eps.double()
    prior_minus_q = 0.5 * (ed.square().sum(-1) - zd.square().sum(-1) + logvar.double().sum(-1).unsqueeze(1))
    return log_px_z + prior_minus_q


def iwae_bound(
    model: VAE,
    x: Tensor,
    k: int,
    chunk: int | None = None,
    generator: torch.Generator | None = None,
    memory_mb: float = IWAE_MEMORY_MB,
    max_rows: int | None = None,
) -> Tensor:
    """Importance-weighted bound log p(x) >= log 1/k sum_i p(x, z_i) / q(z_i|x) (Burda et al. 2015).

    x (N, C, H, W) -> (N,) float32 in nats; tends to log p(x) as k grows; its expectation at k = 1 is
    the ELBO.

    Batched over images and samples: each decoder call decodes up to ``rows`` codes (whole images'
    k samples at once, or, when k alone exceeds ``rows``, one image's samples in slices), and the
    log-weights are combined by a running logsumexp in float64. ``rows`` is ``max_rows`` if given,
    else what fits the decoder's two widest activations (float32) in ``memory_mb``; ``chunk``
    (the old knob: samples per image per call) caps it at chunk * N, the old footprint.

    The noise is drawn image by image, eps_i (k, D) in one call each, so the result is that of a plain
    loop ``for i: iwae_bound(model, x[i:i+1], k, generator=g)`` and does not depend on the chunking.
    """
    if model.deterministic:
        raise ValueError("an AE has no q(z|x): the importance-weighted bound needs a VAE")
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    n = len(x)
    with torch.inference_mode():
        if max_rows is None:
            row_bytes = 2 * 4 * _decoder_row_floats(model, x)  # input + output of the widest layer
            max_rows = int(memory_mb * 2**20 // row_bytes)
        if chunk is not None:
            max_rows = min(max_rows, chunk * n)
        rows = max(1, max_rows)
        per_call = max(1, rows // k)  # whole images per decoder call (when k <= rows)
        d = model.latent_dim
        xf = x.flatten(1)  # (N, P)
        out = torch.empty(n, dtype=torch.float64, device=x.device)
        q = model.encode(x)  # once for all images: the loop below may go image by image
        decode = fast_decoder(model)  # decode_logits, laid out for the CPU's conv kernels
        for i in range(0, n, per_call):
            j = min(i + per_call, n)
            mu, logvar = q.mean[i:j], q.logvar[i:j]
            # One randn call per image: the stream a per-image loop draws (one (k, D) call each);
            # a single (g, k, D) call would not match it bit for bit (CPU normal_ fills in blocks).
            eps = torch.stack(
                [torch.randn(k, d, generator=generator, dtype=mu.dtype, device=mu.device) for _ in range(j - i)]
            )  # (g, k, D)
            if k <= rows:
                lw = _log_weights(model, xf[i:j], mu, logvar, eps, decode)  # (g, k) float64
                out[i:j] = torch.logsumexp(lw, dim=1)
                continue
            # k > rows: one image (g = 1), its k samples in slices; the running logsumexp is float64
            # so that thousands of partial sums of weights spanning hundreds of nats lose nothing.
            acc = torch.full((1,), -math.inf, dtype=torch.float64, device=x.device)
            for s in range(0, k, rows):
                lw = _log_weights(model, xf[i:j], mu, logvar, eps[:, s : s + rows], decode)
                acc = torch.logaddexp(acc, torch.logsumexp(lw, dim=1))
            out[i:j] = acc
        res = (out - math.log(k)).to(x.dtype if x.is_floating_point() else torch.float32)
    return res.clone()  # a normal tensor, usable outside inference mode
