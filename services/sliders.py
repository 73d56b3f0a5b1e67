"""What the Latent sliders page computes on the server: the order of the sliders, their ranges, the
start codes, the mu +- sigma band of an encoded start and draws z ~ q(z|x) from it, and
the traversals (one row, or a grid of every active dimension).

A VAE's sliders span [-4, 4], where its prior has almost all its mass. An AE has no prior: its codes
lie wherever training put them (often far outside [-4, 4]), so each slider spans what the test
codes actually cover, padded a little. Pure PyTorch / NumPy; codes are (N, D) tensors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from services.explore import traversal
from vae.evaluate import ACTIVE_UNIT_NATS

INACTIVE = ACTIVE_UNIT_NATS  # KL in nats (an AE: code variance) at or below which the decoder ignores a dimension
PRIOR_RANGE = 4.0  # a VAE's sliders: beyond +-4 the prior has almost no mass
TRAVERSAL_RANGE = 3.0  # a VAE's traversals: +-3 prior standard deviations
PAD = 0.05  # an AE's range: the test codes' span, widened by this fraction on each side
POSITIONS = 160  # about this many slider positions across a range


@dataclass(frozen=True)
class Axis:
    """One slider's range and step."""

    lo: float
    hi: float
    step: float


def order_dimensions(score: Tensor, threshold: float = INACTIVE) -> tuple[list[int], list[int]]:
    """Dimensions by ``score`` (D,) (mean KL, or an AE's code variance), most informative first:
    (active, inactive), inactive being those at or below ``threshold``. When none is active all
    are returned as active, so the page never hides every slider."""
    order = torch.argsort(score, descending=True, stable=True).tolist()
    active = [j for j in order if float(score[j]) > threshold]
    if not active:
        return order, []
    return active, [j for j in order if float(score[j]) <= threshold]


def nice_step(span: float, positions: int = POSITIONS) -> float:
    """The largest of 1, 2 or 5 x 10^k that gives at least ``positions`` steps over ``span`` (> 0)."""
    raw = span / positions
    power = 10.0 ** math.floor(math.log10(raw))
    return max(m * power for m in (1, 2, 5) if m * power <= raw * (1 + 1e-9))


def slider_axes(latent_dim: int, codes: Tensor | None = None, deterministic: bool = False) -> list[Axis]:
    """Each dimension's slider range. A VAE (or a model without test codes): [-4, 4] in steps of 0.05.
    An AE: the min to max of its test codes (N, D), padded by 5% each side and rounded out to its step."""
    if not deterministic or codes is None or len(codes) == 0:
        return [Axis(-PRIOR_RANGE, PRIOR_RANGE, 0.05)] * latent_dim
    axes = []
    for lo, hi in zip(codes.min(0).values.tolist(), codes.max(0).values.tolist()):
        span = max(hi - lo, 1e-3)  # a constant dimension still gets a usable slider
        lo, hi = lo - PAD * span, hi + PAD * span
        step = nice_step(hi - lo)
        axes.append(Axis(round(math.floor(lo / step) * step, 10), round(math.ceil(hi / step) * step, 10), step))
    return axes


def clamp(z: Tensor, axes: Sequence[Axis]) -> Tensor:
    """A code (D,) moved into the sliders' ranges."""
    lo = torch.tensor([a.lo for a in axes], dtype=z.dtype)
    hi = torch.tensor([a.hi for a in axes], dtype=z.dtype)
    return torch.minimum(torch.maximum(z, lo), hi)


START_CHOICES = ("mean", "random", "image")


def start_code(
    how: str,
    axes: Sequence[Axis],
    codes: Tensor | None = None,
    deterministic: bool = False,
    seed: int = 0,
    image_code: Tensor | None = None,
) -> Tensor:
    """The code (D,) the sliders start from, inside their ranges.

    ``how`` is "mean" (a VAE: the prior mean 0; an AE: the mean of its test codes (N, D)), "random"
    (a VAE: a draw from N(0, I); an AE: from the Gaussian fitted to its test codes, per dimension),
    or "image" (``image_code`` (D,), the encoding of a test image)."""
    if how not in START_CHOICES:
        raise ValueError(f"start must be one of {START_CHOICES}, got {how!r}")
    d = len(axes)
    if how == "image":
        if image_code is None:
            raise ValueError("start 'image' needs image_code")
        return clamp(image_code.float(), axes)
    eps = torch.randn(d, generator=torch.Generator().manual_seed(seed)) if how == "random" else torch.zeros(d)
    if deterministic and codes is not None and len(codes) > 1:
        return clamp(codes.mean(0) + codes.std(0) * eps, axes)
    return clamp(eps, axes)


@dataclass(frozen=True)
class Band:
    """One dimension's posterior q(z_j|x) = N(mu, sigma^2): its +-1 sigma band on the slider."""

    j: int
    mu: float
    sigma: float

    @property
    def span(self) -> tuple[float, float]:
        """(mu - sigma, mu + sigma)."""
        return self.mu - self.sigma, self.mu + self.sigma


def posterior_bands(mean: Tensor, std: Tensor, order: Sequence[int]) -> list[Band]:
    """The mu +- sigma band of q(z|x) for each dimension, in slider order; ``mean`` and ``std`` are (D,)."""
    return [Band(int(j), float(mean[j]), float(std[j])) for j in order]


def posterior_draw(mean: Tensor, std: Tensor, axes: Sequence[Axis], seed: int) -> Tensor:
    """z ~ q(z|x) = N(mean, diag(std^2)) (D,): z = mean + std * eps, eps ~ N(0, I) drawn from a
    generator seeded with ``seed`` (the same seed, the same draw), moved into the sliders' ranges."""
    eps = torch.randn(len(mean), generator=torch.Generator().manual_seed(seed))
    return clamp(mean.float() + std.float() * eps, axes)


def traversal_values(axis: Axis, deterministic: bool, steps: int) -> np.ndarray:
    """The values one traversal row sweeps: +-3 prior standard deviations for a VAE, the slider's
    whole range for an AE (steps,)."""
    if deterministic:
        return np.linspace(axis.lo, axis.hi, steps)
    return np.linspace(-TRAVERSAL_RANGE, TRAVERSAL_RANGE, steps)


def traversal_grid(z: Tensor, dims: Sequence[int], axes: Sequence[Axis], deterministic: bool, steps: int) -> Tensor:
    """Codes of an all-dimensions traversal: row r sweeps dimension dims[r] with the others held at z (D,).
    Returns (len(dims) * steps, D), row after row."""
    rows = [traversal(z, j, traversal_values(axes[j], deterministic, steps).tolist()) for j in dims]
    return torch.cat(rows) if rows else z.new_zeros(0, len(z))


PAD_STEPS = 9  # the server pad's grid: this many values of each of its two dimensions


def pad_grid(
    z: Tensor, i: int, j: int, axes: Sequence[Axis], steps: int = PAD_STEPS
) -> tuple[np.ndarray, np.ndarray, Tensor]:
    """The server-side 2-D pad: ``steps`` values of dimension i across its slider range (xs, left to
    right) and of j (ys, top to bottom: highest first), and the codes (steps * steps, D), row after
    row, with the other dimensions held at z (D,)."""
    xs = np.linspace(axes[i].lo, axes[i].hi, steps)
    ys = np.linspace(axes[j].hi, axes[j].lo, steps)
    codes = z.detach().to(torch.float32).repeat(steps * steps, 1)
    codes[:, i] = torch.tensor(np.tile(xs, steps), dtype=torch.float32)
    codes[:, j] = torch.tensor(np.repeat(ys, steps), dtype=torch.float32)
    return xs, ys, codes


def snap(value: float, axis: Axis) -> float:
    """A value moved into the slider's range and onto its steps (what st.slider can hold)."""
    k = round((min(max(value, axis.lo), axis.hi) - axis.lo) / axis.step)
    return round(min(axis.lo + k * axis.step, axis.hi), 10)
