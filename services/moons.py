"""The full-moon / half-moon argument (seeds 003) made measurable on the moons data set.

- ``story`` reads a path's frames, each fitted to a moon by the data set's own renderer
  (``vae.datasets.moons.fit_moons``, re-exported here with ``MoonFit`` and ``MOON_FIT_LIMIT``): are they
  all moons, in order?
- ``moon_plane`` lays the argument out in a plane of the latent space: the data's codes (for a VAE, each
  with its noise q(z|x) = N(mu, sigma^2)), the path between two of them, and, for every step of the path,
  whose noise covers it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from vae.datasets.moons import MOON_FIT_LIMIT, PHASE_NAMES, MoonFit, fit_moons, phase_class
from vae.distributions import LOG_2PI, projected_covariance

__all__ = ["MOON_FIT_LIMIT", "MoonFit", "MoonPlane", "fit_moons", "moon_plane", "story"]


def story(fit: MoonFit) -> dict[str, bool | float]:
    """Does a path's frames (fitted in order, ends included) tell the moon story? Every frame is a moon;
    the illuminated fraction moves one way from end to end (steps back of at most 0.02); the largest
    single step's share of the whole change; how many in-between frames read as waxing and as waning
    (a near-full moon's side is often unclear: those count in neither)."""
    lit = fit.lit
    step = lit[1:] - lit[:-1]
    sign = 1.0 if float(lit[-1] - lit[0]) >= 0 else -1.0
    total = float((lit[-1] - lit[0]).abs())
    inner = slice(1, len(lit) - 1)
    sided = fit.sided[inner]
    waxing = (fit.phase[inner] < math.pi) & sided
    waning = (fit.phase[inner] >= math.pi) & sided
    return {
        "all_moons": bool(fit.is_moon.all()),
        "in_order": bool((sign * step >= -0.02).all()),
        "largest_step": float((sign * step).max() / total) if total > 0 else 0.0,
        "worst_fit": float(fit.error.max()),
        "waxing": int(waxing.sum()),  # in-between frames whose lit side reads as waxing
        "waning": int(waning.sum()),
    }


# --------------------------------------------------------------------------- the latent plane


@dataclass
class MoonPlane:
    """A plane through two end codes of a latent space: origin the first end, axis 1 towards the second,
    axis 2 the data codes' main direction of spread across axis 1. All coordinates are in that plane."""

    codes: np.ndarray  # (N, 2) the data's codes
    data_phase: np.ndarray  # (N,) their phases (radians)
    covs: np.ndarray | None  # (N, 2, 2) each code's q(z|x) seen in the plane; None for an AE
    path: np.ndarray  # (S, 2) the path's steps; its first and last are the ends
    end_covs: np.ndarray | None  # (2, 2, 2) the ends' q(z|x) in the plane
    covered: np.ndarray | None  # (S,) how many data codes' 95% noise region holds each step (full D)
    cover_phase: list[str] | None  # (S,) the phase whose noise gives each step most of its density
    cover_share: np.ndarray | None  # (S,) that phase's share of the step's density under q(z) = mean q(z|x_i)
    nearest: np.ndarray  # (S,) distance (full D) from each step to the nearest data code
    spacing: float  # median distance between a data code and its nearest other data code


def _basis(z_a: Tensor, z_b: Tensor, codes: Tensor) -> Tensor:
    """(D, 2): unit vectors along b - a and along the codes' top principal direction orthogonal to it."""
    e1 = z_b - z_a
    e1 = e1 / e1.norm().clamp_min(1e-12)
    rest = codes - codes.mean(0)
    rest = rest - (rest @ e1)[:, None] * e1
    e2 = torch.linalg.svd(rest, full_matrices=False).Vh[0] if len(codes) > 1 else torch.zeros_like(e1)
    e2 = e2 - (e2 @ e1) * e1
    return torch.stack([e1, e2 / e2.norm().clamp_min(1e-12)], 1)


def _chi2_95(d: int) -> float:
    """The 95% quantile of chi-square with d degrees of freedom: a step z lies in the 95% region of
    N(mu, diag(sigma^2)) when sum(((z - mu) / sigma)^2) is at most this."""
    # P(chi2_d <= x) = gammainc(d/2, x/2): bisection in float64 (60 halvings of [0, d + 20 sqrt(2d) + 20]),
    # without importing SciPy (about 1 s of a cold page run).
    a, lo, hi = torch.tensor(d / 2, dtype=torch.float64), 0.0, d + 20.0 * math.sqrt(2 * d) + 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (
            (mid, hi)
            if float(torch.special.gammainc(a, torch.tensor(mid / 2, dtype=torch.float64))) < 0.95
            else (lo, mid)
        )
    return (lo + hi) / 2


@torch.no_grad()
def moon_plane(
    mean: Tensor,
    std: Tensor | None,
    phase: Tensor,
    path: Tensor,
    end_std: Tensor | None = None,
    ref_n: int = 5000,
    chunk: int = 256,
) -> MoonPlane:
    """Lay out a path (S, D) among the data's codes: posterior means (N, D), their sigma (N, D) or None for
    an AE, and the data's phases (N,); ``end_std`` (2, D) is the ends' sigma. For each step, the data images
    whose q(z|x) covers it (VAE only)."""
    mean, path = mean[:ref_n].double(), path.double()
    phase = phase[:ref_n]
    w = _basis(path[0], path[-1], mean)  # (D, 2)

    def to_plane(z: Tensor) -> np.ndarray:
        return ((z - path[0]) @ w).numpy()

    d_near = torch.cdist(path, mean).min(1).values.numpy()
    dd = torch.cdist(mean[:2000], mean[:2000])
    dd.fill_diagonal_(float("inf"))
    spacing = float(dd.min(1).values.median()) if len(mean) > 1 else 0.0
    covs = end_covs = covered = share = None
    names: list[str] | None = None
    if std is not None:
        var = std[:ref_n].double().pow(2)
        covs = projected_covariance(var, w).numpy()
        # log q(z_t|x_i) for every step t and image i, (S, N), in chunks of images
        maha, logq = [], []
        for i in range(0, len(mean), chunk):
            m, v = mean[i : i + chunk], var[i : i + chunk]
            sq = ((path[:, None, :] - m[None]) ** 2 / v[None]).sum(-1)  # (S, n)
            maha.append(sq)
            logq.append(-0.5 * (sq + v.log().sum(-1)[None] + mean.shape[1] * LOG_2PI))
        sq, logq = torch.cat(maha, 1), torch.cat(logq, 1)
        covered = (sq <= _chi2_95(mean.shape[1])).sum(1).numpy()
        resp = torch.softmax(logq, dim=1)  # each image's share of q(z_t) = mean_i q(z_t|x_i)
        cls = torch.from_numpy(phase_class(phase.numpy()))
        by_class = torch.zeros(len(path), len(PHASE_NAMES), dtype=resp.dtype).index_add_(1, cls, resp)
        top = by_class.max(1)
        names, share = [PHASE_NAMES[int(k)] for k in top.indices], top.values.numpy()
        if end_std is not None:
            end_covs = projected_covariance(end_std.double().pow(2), w).numpy()
    return MoonPlane(
        codes=to_plane(mean),
        data_phase=phase.numpy(),
        covs=covs,
        path=to_plane(path),
        end_covs=end_covs,
        covered=covered,
        cover_phase=names,
        cover_share=share,
        nearest=d_near,
        spacing=spacing,
    )
