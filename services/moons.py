"""The full-moon / half-moon argument (seeds 003) made measurable on the moons data set.

- ``fit_moons`` fits the data set's own renderer (``vae.data.moon_shapes``) to each picture: phase, radius,
  centre, tilt and brightness, by gradient descent from the nearest of a grid of clean moons. Its phase does
  not depend on where the moon sits or how big it is, as a nearest-neighbour phase does (a neighbour in
  pixels is mostly a moon of the same size and place), and its error says whether the picture is a moon at
  all: an AE's midpoint, a cross-fade of two moons, has two lit levels that no moon has.
- ``moon_plane`` lays the argument out in a plane of the latent space: the data's codes (for a VAE, each
  with its noise q(z|x) = N(mu, sigma^2)), the path between two of them, and, for every step of the path,
  whose noise covers it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from vae.data import MOON_RADIUS, MOON_SHIFT, MOON_TILT, PHASE_NAMES, moon_shapes, phase_class, shade_moons

# A picture is "a moon" when the best clean moon explains it to this RMS pixel error. Real test moons,
# craters and noise included, fit within 0.083 (95th percentile) and 0.096 (99th) with the settings
# below: measured on the first 200 test moons, and kept honest by tests/services/test_moons.py.
MOON_FIT_LIMIT = 0.10
# Waxing and waning fits this close (RMS) cannot be told apart: a near-full moon's dark rim is a pixel.
SIDE_MARGIN = 0.002
FIT_STEPS = 60


@dataclass
class MoonFit:
    """The best clean moon for each of N pictures."""

    phase: Tensor  # (N,) radians in [0, 2 pi): 0 new, pi/2 first quarter, pi full
    error: Tensor  # (N,) RMS pixel error of that moon
    side_clear: Tensor  # (N,) bool: the waxing and the waning fit differ by more than SIDE_MARGIN

    @property
    def lit(self) -> Tensor:
        """The illuminated fraction (1 - cos phase) / 2 of the disk, (N,): 1 full, 0.5 half, 0 new."""
        return (1 - torch.cos(self.phase)) / 2

    @property
    def sided(self) -> Tensor:
        """(N,) bool: the lit side (waxing or waning) can be read: clear, and the moon neither full nor new."""
        return self.side_clear & (self.lit > 0.02) & (self.lit < 0.98)

    @property
    def is_moon(self) -> Tensor:
        return self.error <= MOON_FIT_LIMIT

    def name(self, i: int) -> str:
        """The phase's name; without waxing/waning where the picture cannot tell them apart."""
        lit = float(self.lit[i])
        if bool(self.sided[i]) or lit < 0.02 or lit > 0.98:
            return PHASE_NAMES[int(phase_class(float(self.phase[i])))]
        return "crescent" if lit < 0.25 else "half moon" if lit < 0.75 else "gibbous"

    def caption(self, i: int) -> str:
        verdict = "" if bool(self.is_moon[i]) else ": no moon fits"
        return f"{self.name(i)} {100 * float(self.lit[i]):.0f}% lit (fit {float(self.error[i]):.3f}{verdict})"


@lru_cache(maxsize=2)
def _grid(size: int) -> tuple[Tensor, Tensor]:
    """Clean moons on a coarse grid of (phase, radius, cx, cy, tilt): parameters (M, 5), pictures (M, size^2)."""
    phase = np.arange(36) * (2 * math.pi / 36)
    radius = np.linspace(*MOON_RADIUS, 4) * size
    centre = size / 2 + np.linspace(-MOON_SHIFT, MOON_SHIFT, 5) * size
    tilt = np.linspace(-MOON_TILT, MOON_TILT, 3)
    params = np.array(list(itertools.product(phase, radius, centre, centre, tilt)))  # (M, 5)
    disk, lit, _, _ = moon_shapes(*params.T, size=size)
    pictures = shade_moons(disk, lit).reshape(len(params), -1)
    return torch.from_numpy(params).float(), torch.from_numpy(pictures).float()


def _render(p: Tensor, size: int) -> Tensor:
    """Clean moons for parameters p (N, 6): phase, radius, cx, cy, tilt, gain -> (N, size^2)."""
    disk, lit, _, _ = moon_shapes(*p[:, :5].unbind(1), size=size)
    return shade_moons(disk, lit, gain=p[:, 5, None, None]).reshape(len(p), -1)


def fit_moons(images: Tensor, steps: int = FIT_STEPS) -> MoonFit:
    """Fit a clean moon to each picture (N, 1, S, S) in [0, 1]: its phase and how well it fits.

    Each picture is fitted twice, from the nearest grid moon and from its mirror image in phase (waxing
    <-> waning, which a local search cannot cross), and keeps the better fit. Deterministic.
    """
    n, size = len(images), images.shape[-1]
    x = images.detach().float().reshape(n, size * size).cpu()
    if n == 0:
        empty = torch.zeros(0)
        return MoonFit(phase=empty, error=empty, side_clear=torch.zeros(0, dtype=torch.bool))
    params, pictures = _grid(size)
    start = params[torch.cdist(x, pictures).argmin(1)]  # (N, 5)
    mirror = start.clone()
    mirror[:, 0] = 2 * math.pi - mirror[:, 0]
    p = torch.cat([torch.cat([start, mirror]), torch.full((2 * n, 1), 0.9)], 1).requires_grad_(True)
    target = torch.cat([x, x])
    opt = torch.optim.Adam([p], lr=0.04)
    damp = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 0.2])  # brightness moves slower than the geometry
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            (_render(p, size) - target).pow(2).mean(1).sum().backward()
            p.grad *= damp
            opt.step()
    with torch.no_grad():
        err = (_render(p, size) - target).pow(2).mean(1).sqrt()
        phase = torch.remainder(p[:, 0], 2 * math.pi)
    first = err[:n] <= err[n:]
    return MoonFit(
        phase=torch.where(first, phase[:n], phase[n:]),
        error=torch.minimum(err[:n], err[n:]),
        side_clear=(err[:n] - err[n:]).abs() > SIDE_MARGIN,
    )


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
    from scipy.stats import chi2  # SciPy comes with scikit-learn

    return float(chi2.ppf(0.95, d))


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
        covs = torch.einsum("dk,nd,dl->nkl", w, var, w).numpy()
        # log q(z_t|x_i) for every step t and image i, (S, N), in chunks of images
        maha, logq = [], []
        for i in range(0, len(mean), chunk):
            m, v = mean[i : i + chunk], var[i : i + chunk]
            sq = ((path[:, None, :] - m[None]) ** 2 / v[None]).sum(-1)  # (S, n)
            maha.append(sq)
            logq.append(-0.5 * (sq + v.log().sum(-1)[None] + mean.shape[1] * math.log(2 * math.pi)))
        sq, logq = torch.cat(maha, 1), torch.cat(logq, 1)
        covered = (sq <= _chi2_95(mean.shape[1])).sum(1).numpy()
        resp = torch.softmax(logq, dim=1)  # each image's share of q(z_t) = mean_i q(z_t|x_i)
        cls = torch.from_numpy(phase_class(phase.numpy()))
        by_class = torch.zeros(len(path), len(PHASE_NAMES), dtype=resp.dtype).index_add_(1, cls, resp)
        top = by_class.max(1)
        names, share = [PHASE_NAMES[int(k)] for k in top.indices], top.values.numpy()
        if end_std is not None:
            end_covs = torch.einsum("dk,nd,dl->nkl", w, end_std.double().pow(2), w).numpy()
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
