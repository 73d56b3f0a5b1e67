"""The ELBO of one image taken apart, and its posterior q(z|x) shown: pure torch, no Streamlit.

For an image x and the encoder's q(z|x) = N(mu, diag sigma^2), with z^(l) = mu + sigma * eps^(l):

    MC estimate   (1/L) sum_l [log p(x, z^(l)) - log q(z^(l)|x)]
    closed form   (1/L) sum_l log p(x|z^(l)) - KL(q(z|x) || p(z))

Both are unbiased estimates of the same ELBO; the second has the KL term exactly, so a lower variance.
Each is drawn ``repeats`` times (seeded) to show its spread, which shrinks like 1/sqrt(L). The gap
IWAE_k - ELBO estimates KL(q(z|x) || p(z|x)), the slack Jensen's inequality leaves; it is >= 0 in
expectation, not for every draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from vae.distributions import log_normal
from vae.models import VAE
from vae.objectives import log_likelihood

MC_L = (1, 10, 100, 1000)  # the choices of L offered
REPEATS = 20  # seeded repeats of each estimate
MAX_DECODES = 20_000  # per image and estimate pair: L * repeats is capped at this (fewer repeats)
CHUNK = 1000  # codes decoded at once
POSTERIOR_SAMPLES = 8


@dataclass
class McSpread:
    """``repeats`` draws of both ELBO estimates for one L, in nats: (R,) each."""

    L: int
    mc: np.ndarray  # (1/L) sum [log p(x, z) - log q(z|x)]
    closed: np.ndarray  # (1/L) sum log p(x|z) - KL (closed form)

    @property
    def repeats(self) -> int:
        return len(self.mc)

    @staticmethod
    def stats(v: np.ndarray) -> tuple[float, float]:
        """mean and standard deviation (ddof 1) over the repeats."""
        return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


@dataclass
class BoundParts:
    """One image's ELBO taken apart, in nats."""

    recon: float  # E_q[log p(x|z)], Monte Carlo (L * repeats samples)
    kl: float  # KL(q(z|x) || N(0, I)), closed form
    iwae: float
    iwae_k: int
    spread: McSpread

    @classmethod
    def of(cls, spread: McSpread, kl: float, iwae: float, iwae_k: int) -> BoundParts:
        """The parts of one image from both estimates' spread, its closed-form KL and an IWAE_k (the
        reconstruction term pools every sample of the closed-form estimate)."""
        return cls(recon=float(spread.closed.mean()) + kl, kl=kl, iwae=iwae, iwae_k=iwae_k, spread=spread)

    @property
    def elbo(self) -> float:
        return self.recon - self.kl

    @property
    def gap(self) -> float:
        """IWAE_k - ELBO: an estimate of KL(q(z|x) || p(z|x)), >= 0 in expectation."""
        return self.iwae - self.elbo


def _check(model: VAE) -> None:
    if model.deterministic:
        raise ValueError("an AE has no q(z|x): its ELBO cannot be taken apart")


@torch.no_grad()
def mc_spread(model: VAE, x: Tensor, L: int, repeats: int = REPEATS, seed: int = 0) -> McSpread:
    """Both ELBO estimates with L samples, ``repeats`` times on the same draws, for one model input
    x (C, H, W) (already as the model scores it). ``repeats`` drops so that L * repeats <= MAX_DECODES
    (at least 2)."""
    _check(model)
    model.eval()
    repeats = max(2, min(repeats, MAX_DECODES // max(L, 1)))
    xb = x.unsqueeze(0).to(model.device)
    q = model.encode(xb)
    gen = torch.Generator(device=model.device).manual_seed(seed)
    kl = q.kl()  # (1,)
    n = L * repeats
    log_px_z, log_pz, log_qz = [], [], []
    for done in range(0, n, CHUNK):
        z = q.sample(gen, n_samples=min(CHUNK, n - done))  # (m, 1, D)
        logits = model.decode_logits(z.reshape(-1, z.shape[-1])).reshape(z.shape[0], *xb.shape)
        log_px_z.append(log_likelihood(xb, logits, model.config.likelihood, model.log_sigma)[:, 0])
        log_pz.append(log_normal(z)[:, 0])
        log_qz.append(q.log_prob(z)[:, 0])
    rec = torch.cat(log_px_z).double().reshape(repeats, L)
    mc = (rec + torch.cat(log_pz).double().reshape(repeats, L) - torch.cat(log_qz).double().reshape(repeats, L)).mean(1)
    closed = rec.mean(1) - float(kl[0])
    return McSpread(L=L, mc=mc.cpu().numpy(), closed=closed.cpu().numpy())


@dataclass
class ModelSpread:
    """Both ELBO estimates with L samples over a model's test images: per image the mean and the standard
    deviation over repeats, then averaged over the images (nats)."""

    L: int
    repeats: int
    n_images: int
    mc: float  # mean over images of the MC estimate (1/L) sum [log p(x, z) - log q(z|x)]
    mc_sd: float  # mean over images of its spread over repeats
    closed: float  # the same for the closed-form-KL estimate
    closed_sd: float


def model_spread(model: VAE, x: Tensor, L: int, repeats: int = REPEATS, seed: int = 0) -> ModelSpread:
    """:func:`mc_spread` of each model input (N, C, H, W), summarised for the model: what one L-sample
    estimate of an image's ELBO varies by, with and without the KL in closed form."""
    spreads = [mc_spread(model, xi, L, repeats, seed=seed + i) for i, xi in enumerate(x)]
    mc = np.array([McSpread.stats(s.mc) for s in spreads])  # (N, 2): mean, sd
    closed = np.array([McSpread.stats(s.closed) for s in spreads])
    return ModelSpread(
        L=L,
        repeats=spreads[0].repeats if spreads else 0,
        n_images=len(spreads),
        mc=float(mc[:, 0].mean()),
        mc_sd=float(mc[:, 1].mean()),
        closed=float(closed[:, 0].mean()),
        closed_sd=float(closed[:, 1].mean()),
    )


@dataclass
class PosteriorView:
    """q(z|x) of one image, its dimensions sorted by KL (largest first), and decodings."""

    order: np.ndarray  # (D,) dimension indices, by KL descending
    mu: np.ndarray  # (D,) in that order
    sigma: np.ndarray  # (D,)
    kl: np.ndarray  # (D,) KL(q(z_j|x) || N(0, 1)), nats
    mean_image: Tensor  # (C, H, W): the decoder's mean at z = mu
    samples: Tensor  # (n, C, H, W): the decoder's mean at z ~ q(z|x)


@torch.no_grad()
def posterior_view(model: VAE, x: Tensor, n: int = POSTERIOR_SAMPLES, seed: int = 0) -> PosteriorView:
    """mu +- sigma and the KL of each dimension, the decoded mean and n decoded samples z ~ q(z|x)
    (seeded) for one model input x (C, H, W)."""
    _check(model)
    model.eval()
    q = model.encode(x.unsqueeze(0).to(model.device))
    kl = q.kl_per_dim()[0].cpu()
    order = torch.argsort(kl, descending=True, stable=True)
    gen = torch.Generator(device=model.device).manual_seed(seed)
    z = q.sample(gen, n_samples=n)[:, 0]  # (n, D)
    return PosteriorView(
        order=order.numpy(),
        mu=q.mean[0].cpu()[order].numpy(),
        sigma=q.std[0].cpu()[order].numpy(),
        kl=kl[order].numpy(),
        mean_image=model.decode(q.mean)[0].cpu(),
        samples=model.decode(z).cpu(),
    )
