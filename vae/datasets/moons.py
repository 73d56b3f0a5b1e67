"""Moons: pictures of the moon's eight phases, drawn here (the seeds' data set), and the fit of that
drawing to any picture.

- Rendering: ``moon_shapes`` gives the clean moon of a geometry (phase, radius, centre, tilt) in NumPy
  or, differentiably, in torch; ``render_moons`` adds size, place, tilt, craters and noise; ``make_moons``
  draws a seeded data set; ``load_moons`` is its ``Dataset`` (kept on disk, see ``cached_moons``).
- Fitting: ``fit_moons`` fits the same renderer to each picture (phase, radius, centre, tilt and
  brightness) by gradient descent from the nearest of a grid of clean moons. Its phase does not depend on
  where the moon sits or how big it is, as a nearest-neighbour phase does (a neighbour in pixels is mostly a
  moon of the same size and place), and its error says whether the picture is a moon at all: an AE's
  midpoint, a cross-fade of two moons, has two lit levels that no moon has.
"""

from __future__ import annotations

import inspect
import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from ..optim import adam
from .core import Dataset, DataSpec, LoadRequest, disk_cached

PHASE_NAMES = (
    "new moon",
    "waxing crescent",
    "first quarter",
    "waxing gibbous",
    "full moon",
    "waning gibbous",
    "last quarter",
    "waning crescent",
)


# --------------------------------------------------------------------------- rendering


Array = np.ndarray | torch.Tensor  # the moon renderer runs on either

# The jitter's ranges: radius and centre shift as shares of the image side, tilt in radians.
MOON_RADIUS = (0.30, 0.42)
MOON_SHIFT = 0.08
MOON_TILT = 0.5


def phase_class(angle: np.ndarray | float) -> np.ndarray:
    """Phase angle in radians (0 new, pi/2 first quarter, pi full) -> index into PHASE_NAMES."""
    a = np.mod(np.asarray(angle, dtype=np.float64), 2 * math.pi)
    return (np.floor(a / (math.pi / 4) + 0.5).astype(np.int64)) % 8


def moon_shapes(angle: Array, radius: Array, cx: Array, cy: Array, tilt: Array, size: int = 28) -> tuple[Array, ...]:
    """The clean moon each geometry gives: phase angle, radius, centre (cx, cy) in pixels and terminator
    tilt, each (N,) -> the disk's coverage, the lit part's coverage, and the disk coordinates dx, dy,
    each broadcastable to (N, size, size). NumPy arrays in, NumPy out; torch tensors in, torch out
    (differentiable: how :func:`fit_moons` fits a moon to a picture).

    With (u, v) disk coordinates and u along the sun, a point is lit when s*u >= cos(angle) * sqrt(1 - v^2),
    s = +1 waxing (lit on the right), -1 waning: the terminator is an ellipse of half-width |cos(angle)|.
    """
    xp = torch if isinstance(angle, torch.Tensor) else np
    floor = 1e-12 if xp is torch else 0.0  # keeps sqrt's gradient finite at 0
    angle = xp.remainder(angle, 2 * math.pi)
    grid = (xp.arange(size) + 0.5)[None, None, :]
    dx = (grid - cx[:, None, None]) / radius[:, None, None]  # (N, 1, S)
    dy = (grid.reshape(1, size, 1) - cy[:, None, None]) / radius[:, None, None]  # (N, S, 1)
    ct, st = xp.cos(tilt)[:, None, None], xp.sin(tilt)[:, None, None]
    u = ct * dx + st * dy
    v = -st * dx + ct * dy
    px = 1.0 / radius[:, None, None]  # one pixel in disk units, for anti-aliasing
    disk = xp.clip((1.0 - xp.sqrt(u**2 + v**2 + floor)) / px + 0.5, 0, 1)
    s = xp.where(angle < math.pi, 1.0, -1.0)[:, None, None]
    edge = xp.cos(angle)[:, None, None] * xp.sqrt(xp.clip(1 - v**2, floor, 1))
    lit = xp.clip((s * u - edge) / px, 0, 1)  # no half-pixel offset: a new moon stays dark
    return disk, lit, dx, dy


def shade_moons(disk: Array, lit: Array, surface: Array | float = 1.0, gain: Array | float = 0.9) -> Array:
    """Brightness of a moon from :func:`moon_shapes`: the lit part at ``gain`` times its ``surface``
    (craters), faint earthshine (0.06) on the dark side."""
    return disk * (gain * lit * surface + 0.06)


def render_moons(
    angle: np.ndarray,
    size: int = 28,
    rng: np.random.Generator | None = None,
    jitter: bool = True,
) -> np.ndarray:
    """Render moon images for phase angles (N,) -> (N, size, size) float32 in [0, 1].

    ``jitter`` adds random size, position, terminator tilt (see :func:`moon_shapes`), crater texture
    and noise.
    """
    rng = rng or np.random.default_rng(0)
    n = len(angle)
    if jitter:
        radius = rng.uniform(*MOON_RADIUS, n) * size
        cx = size / 2 + rng.uniform(-MOON_SHIFT, MOON_SHIFT, n) * size
        cy = size / 2 + rng.uniform(-MOON_SHIFT, MOON_SHIFT, n) * size
        tilt = rng.uniform(-MOON_TILT, MOON_TILT, n)
    else:
        radius = np.full(n, 0.36 * size)
        cx = cy = np.full(n, size / 2)
        tilt = np.zeros(n)
    disk, lit, dx, dy = moon_shapes(angle, radius, cx, cy, tilt, size)
    surface = np.ones_like(disk * lit)
    if jitter:
        # A few dark maria/craters, fixed on the moon's face (so they move with it).
        for _ in range(4):
            mx, my = rng.uniform(-0.6, 0.6, (2, n, 1, 1))
            mr = rng.uniform(0.12, 0.3, (n, 1, 1))
            surface -= 0.25 * np.exp(-((dx - mx) ** 2 + (dy - my) ** 2) / (2 * mr**2))
    img = shade_moons(disk, lit, surface)
    if jitter:
        img = img + rng.normal(0, 0.02, img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


def make_moons(n: int, size: int = 28, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n moon images (n, 1, size, size) and their phase angles (n,) in radians.

    A quarter of the images sit exactly on the eight named phases (true full moons, true half
    moons, ...); the rest are spread within +-22.5 degrees of them.
    """
    rng = np.random.default_rng(seed)
    k = rng.integers(0, 8, n)
    offset = rng.uniform(-math.pi / 8, math.pi / 8, n) * (rng.random(n) >= 0.25)
    angle = np.mod(k * (math.pi / 4) + offset, 2 * math.pi)
    images = render_moons(angle, size=size, rng=rng)
    return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(angle.astype(np.float32))


MOONS_CACHE_MIN = 2000  # smaller sets are drawn faster than a file is read


def cached_moons(n: int, size: int = 28, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`make_moons`, kept on disk: drawing 7,000 moons takes ~2 s, reading them back ~30 ms
    (the app draws them on the first page that needs data after every server start)."""
    if n < MOONS_CACHE_MIN:
        return make_moons(n, size=size, seed=seed)

    def make() -> dict[str, np.ndarray]:
        x, angle = make_moons(n, size=size, seed=seed)
        return {"x": x.numpy(), "angle": angle.numpy()}

    code = inspect.getsource(make_moons) + inspect.getsource(render_moons) + inspect.getsource(moon_shapes)
    code += inspect.getsource(shade_moons) + np.__version__
    arrays = disk_cached("moons", f"{n}:{size}:{seed}:{code}", make)
    return torch.from_numpy(arrays["x"]), torch.from_numpy(arrays["angle"])


def load_moons(n_train: int = 6000, n_test: int = 1000, size: int = 28, seed: int = 0) -> Dataset:
    x, angle = cached_moons(n_train + n_test, size=size, seed=seed)
    y = torch.from_numpy(phase_class(angle.numpy()))
    return Dataset(
        name="moons",
        train_x=x[:n_train],
        train_y=y[:n_train],
        test_x=x[n_train:],
        test_y=y[n_train:],
        label_names=list(PHASE_NAMES),
        style="plain",
        extra={"train_phase": angle[:n_train], "test_phase": angle[n_train:]},
    )


def moon_pair(images: Tensor, phase: Tensor) -> tuple[int, int]:
    """Indices of a true full moon and the true half moon (first quarter) most like it in pixels.

    The seeds' example: interpolating between them shows whether the midpoint is a moon.
    """
    full = torch.nonzero((phase - math.pi).abs() < 1e-5).flatten()
    half = torch.nonzero((phase - math.pi / 2).abs() < 1e-5).flatten()
    if len(full) == 0 or len(half) == 0:
        raise ValueError("no exact full and half moons among these images")
    a = int(full[0])
    d = torch.cdist(images[a : a + 1].reshape(1, -1), images[half].reshape(len(half), -1))[0]
    return a, int(half[d.argmin()])


# --------------------------------------------------------------------------- fitting


# A picture is "a moon" when the best clean moon explains it to this RMS pixel error. Real test moons,
# craters and noise included, fit within 0.083 (95th percentile) and 0.096 (99th) with the settings
# below: measured on the first 200 test moons, and kept honest by tests/engine/test_data_moons.py.
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
    opt = adam([p], lr=0.04)
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


# --------------------------------------------------------------------------- the registry's entry


def _load(req: LoadRequest) -> Dataset:
    return load_moons(size=req.image_size or 28, seed=req.seed)


def _example_pair(data: Dataset) -> tuple[int, int]:
    return moon_pair(data.test_x, data.extra["test_phase"])


SPEC = DataSpec(
    name="moons",
    title="Moons",
    summary="The moon's eight phases, drawn here: 6,000 training and 1,000 test images, any size, "
    "with random size, place, tilt, craters and noise.",
    load=_load,
    order=10,
    style="plain",
    label_names=PHASE_NAMES,
    fit=fit_moons,
    example_pair=_example_pair,
)
