"""2-D maps of latent codes by the projections of ``services.projections`` (raw, PCA, SVD, t-SNE, ...):
fit, place new codes, go back to codes, show posteriors; slow projections run in the background through
a disk cache. Pure NumPy / PyTorch, no UI library: the figure is ``ui.figures.map_figure``.

- ``fit_map(codes, method)`` -> ``LatentMap``: the (N, 2) positions of the codes and the fitted
  projection; ``LatentMap.place(new)`` puts new codes (uploads) on it.
- ``inverse_projection`` / ``unproject``: a position's code where the projection has an inverse;
  ``projected_covariances``: each posterior q(z|x) seen in the map's plane.
- ``DiskCache`` stores the positions of a background projection as ``<key>.npy`` with atomic writes,
  keyed by a hash of the codes themselves and the settings, so a changed checkpoint never reads a stale map.
- ``background_map`` computes such a map in the background (``services.jobs.Runner``) through that
  cache; ``current_map`` is what the Latent map page draws now (PCA stands in while it computes).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from services import projections
from services.explore import decode_batches, manifold_grid, nearest
from services.jobs import RUNNER, Job, Report, Runner
from services.map_geometry import ellipse_axes, ellipse_outline  # noqa: F401  (the map's geometry, re-exported)
from services.projections import Fit, NeighbourFit, Projection, as_codes, neighbours  # noqa: F401  (neighbours: re-exported)
from services.projections.pca import Pca  # noqa: F401  (re-exported)
from services.projections.tsne import (  # noqa: F401  (re-exported: benchmarks/map_latency.py)
    FAST_TSNE,
    PROGRESS_EVERY,
    TsneSettings,
    tsne_embedding,
    tsne_key,
    tsne_threads,
)
from vae.checkpoint import atomic_write
from vae.data import cache_dir
from vae.images import ImageError, preprocess, tile

MAX_POINTS = 10_000
GRID_EXTENT = (0.05, 0.95)  # the manifold grid spans these quantiles of N(0, 1) in each coordinate
STAND_IN = "pca"  # what is drawn while a background projection computes


def methods_for(latent_dim: int) -> list[str]:
    """The projections offered for a latent size, in the registry's order (the first is the default)."""
    return projections.offered(latent_dim)


@dataclass
class LatentMap:
    """A 2-D map of codes: ``xy`` (N, 2) are the positions of ``codes`` (N, D) by projection ``method``,
    ``fit`` what it fitted (None: an embedding read back from disk, whose new codes are placed by their
    ``k`` nearest codes in latent space)."""

    method: str
    xy: np.ndarray
    codes: np.ndarray
    k: int = 10
    fit: Fit | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.fit is None:
            self.fit = NeighbourFit(self.xy, self.codes, self.k)

    @property
    def projection(self) -> Projection:
        return projections.get(self.method)

    def place(self, codes: np.ndarray | Tensor) -> np.ndarray:
        """Positions (M, 2) of new codes (M, D) on this map."""
        x = as_codes(codes)
        if x.shape[1] != self.codes.shape[1]:
            raise ValueError(f"codes have {x.shape[1]} dimensions, the map's have {self.codes.shape[1]}")
        if len(x) == 0:
            return np.zeros((0, 2), dtype=np.float32)
        assert self.fit is not None
        return self.fit.place(x)


def inverse_projection(lmap: LatentMap) -> tuple[np.ndarray, np.ndarray] | None:
    """How a position (x, y) on the map goes back to a code: ``(mean (D,), basis (2, D))`` with
    z = mean + basisᵀ · (x, y); None for a projection without an inverse (t-SNE).

    Raw codes: z = (x, y) (any further dimensions at 0). PCA: the fitted mean and the two components,
    so a position gives the code on the plane of the two components (it undoes the projection on it).
    """
    assert lmap.fit is not None
    return lmap.fit.inverse()


def unproject(lmap: LatentMap, xy: np.ndarray) -> np.ndarray:
    """Codes (M, D) of positions xy (M, 2) on a map with an inverse (see :func:`inverse_projection`)."""
    from services.map_geometry import code_at

    inverse = inverse_projection(lmap)
    if inverse is None:
        raise ValueError(f"a {lmap.projection.title} map has no inverse")
    return code_at(*inverse, xy)


def projected_covariances(std: np.ndarray | Tensor, lmap: LatentMap) -> np.ndarray | None:
    """The posterior q(z|x) = N(μ, diag(σ²)) of each code seen in the map's plane: (N, 2, 2) covariances
    of the projected Gaussians, from σ (N, D); None for a projection that is no linear map (t-SNE).

    A linear map y = W(z - mean) sends it to N(W(μ - mean), W diag(σ²) Wᵀ): raw codes diag(σ₁², σ₂²),
    PCA Wᵀ diag(σ²) W with W (D, 2) the two components (vae.distributions.projected_covariance).
    """
    assert lmap.fit is not None
    return lmap.fit.covariance(as_codes(std).astype(np.float64) ** 2)


@torch.no_grad()
def encode_std(model: Any, x: Tensor, batch_size: int = 1000) -> np.ndarray | None:
    """σ (N, D) of q(z|x) for images x, or None for a deterministic model (an AE has no σ)."""
    model.eval()
    out = []
    for i in range(0, len(x), batch_size):
        q = model.encode(x[i : i + batch_size].to(model.device))
        if q.deterministic:
            return None
        out.append(q.std.cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, model.latent_dim), dtype=np.float32)


def fit_map(codes: np.ndarray | Tensor, method: str = "pca") -> LatentMap:
    """Fit a 2-D map of codes (N, D) with the projection ``method`` (a background one, t-SNE, runs in
    :func:`background_map`). Any projection of 1-D codes gives the raw map."""
    projection = projections.get(method)
    if projection.background:
        raise ValueError(f"method {method!r} runs in the background: background_map (tsne_map_async)")
    x = as_codes(codes)
    if x.shape[1] < 2:
        projection = projections.get("raw")
    fit = projection.fit(x)
    return LatentMap(projection.name, fit.xy, x, fit=fit)


# --------------------------------------------------------------------------- disk cache and background maps


class DiskCache:
    """NumPy arrays on disk, one ``<key>.npy`` per key, in ``vae.data.cache_dir()/maps`` by default."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else cache_dir() / "maps"

    def path(self, key: str) -> Path:
        import re

        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", key) or key.startswith("."):
            raise ValueError(f"bad cache key {key!r}")
        return self.root / f"{key}.npy"

    def load(self, key: str) -> np.ndarray | None:
        """The array stored under key, or None if there is none (or it cannot be read)."""
        try:
            return np.load(self.path(key), allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None

    def save(self, key: str, array: np.ndarray) -> Path:
        p = self.path(key)
        atomic_write(p, lambda f: np.save(f, np.asarray(array), allow_pickle=False))
        return p


def background_map(
    codes: np.ndarray | Tensor, projection: Projection, cache: DiskCache | None = None, runner: Runner | None = None
) -> tuple[LatentMap | None, Job | None, str]:
    """The map of codes by a slow projection if it is ready (from disk or a finished job), else start it.

    Returns ``(map or None, job or None, key)``: a map means ready; no map and a job means poll the job
    (``runner.get(key)``); a job in state ``error`` says why it failed (``runner.forget(key)`` to retry).
    """
    cache = cache or DiskCache()
    runner = runner or RUNNER
    x = as_codes(codes)
    key = projection.cache_key(x)
    stored = cache.load(key)
    if stored is not None and stored.shape == (len(x), 2) and np.isfinite(stored).all():
        return LatentMap(projection.name, stored.astype(np.float32), x), None, key
    job = runner.get(key)
    if job is not None and job.state == "done":
        return job.result, job, key
    if job is not None and job.state == "error":
        return None, job, key

    def compute(progress: Report) -> LatentMap:
        fit = projection.fit(x, progress)
        try:
            cache.save(key, fit.xy)
        except OSError:  # a read-only disk only costs the next visit a recomputation
            pass
        return LatentMap(projection.name, fit.xy, x, fit=fit)

    return None, runner.submit(key, compute), key


def tsne_map_async(
    codes: np.ndarray | Tensor,
    settings: TsneSettings = FAST_TSNE,
    cache: DiskCache | None = None,
    runner: Runner | None = None,
) -> tuple[LatentMap | None, Job | None, str]:
    """:func:`background_map` by t-SNE with ``settings``."""
    from dataclasses import replace

    return background_map(codes, replace(projections.get("tsne"), settings=settings), cache, runner)


@dataclass
class MapView:
    """What the Latent map draws now: ``lmap``; for a background projection also its cache ``job_key``,
    and whether PCA stands in because it is still ``waiting`` or failed (``error`` says why)."""

    lmap: LatentMap
    job_key: str | None = None
    waiting: bool = False
    error: str | None = None


def current_map(
    codes: np.ndarray | Tensor,
    method: str,
    previous_key: str | None = None,
    cache: DiskCache | None = None,
    runner: Runner | None = None,
    projection: Projection | None = None,
) -> MapView:
    """The map of codes (N, D) by ``method`` (or by ``projection`` itself) without waiting: a background
    projection not ready yet is started and PCA stands in. ``previous_key`` is the job this session asked
    for before: a different one is cancelled, so that an abandoned map does not hold the CPU."""
    projection = projection or projections.get(method)
    if not projection.background:
        return MapView(fit_map(codes, projection.name))
    runner = runner or RUNNER
    lmap, job, key = background_map(codes, projection, cache, runner)
    if previous_key and previous_key != key:
        runner.cancel(previous_key)
    if lmap is not None:
        return MapView(lmap, key)
    failed = job is not None and job.state == "error"
    return MapView(fit_map(codes, STAND_IN), key, waiting=not failed, error=job.error if failed else None)


def neighbour_list(codes: np.ndarray | Tensor, i: int, k: int) -> list[tuple[int, float]]:
    """The k codes nearest to codes[i] (N, D), itself excluded: (index, Euclidean distance), nearest first."""
    x = torch.from_numpy(as_codes(codes))
    dist, idx = nearest(x, x[i : i + 1], k + 1)
    return [(int(j), float(d)) for j, d in zip(idx[0], dist[0]) if int(j) != i][:k]


# --------------------------------------------------------------------------- uploads


@dataclass
class Uploads:
    """Uploaded images that made it (``names``, ``images`` (M, C, H, W), ``codes`` (M, D)) and the ones
    that did not (``errors``: (file name, why))."""

    names: list[str]
    images: Tensor
    codes: Tensor
    errors: list[tuple[str, str]]


@torch.no_grad()
def encode_uploads(
    files: Iterable[tuple[str, bytes]],
    model: Any,
    style: str = "plain",
    dark_background: bool = True,
) -> Uploads:
    """Preprocess each (name, bytes) for the model and encode it to its posterior mean mu(x)."""
    names, images, errors = [], [], []
    shape = tuple(model.config.image_shape)
    for name, data in files:
        try:
            images.append(preprocess(data, shape, style=style, dark_background=dark_background).tensor)
            names.append(name)
        except ImageError as e:
            errors.append((name, str(e)))
        except Exception as e:  # anything else a strange file provokes is still one message, not a crash
            errors.append((name, f"cannot be used ({type(e).__name__}: {e})"))
    if not images:
        return Uploads([], torch.zeros(0, *shape), torch.zeros(0, model.latent_dim), errors)
    x = torch.stack(images)
    model.eval()
    mu = model.encode(x.to(model.device)).mean.cpu()
    return Uploads(names, x, mu, errors)


# --------------------------------------------------------------------------- manifold grid


def grid_square(extent: tuple[float, float] = GRID_EXTENT) -> tuple[float, float]:
    """The manifold grid's [lo, hi] in each coordinate of z: the N(0, 1) quantiles at ``extent``."""
    lo, hi = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(extent, dtype=torch.float64)).tolist()
    return float(lo), float(hi)


def manifold_image(model: Any, n: int, extent: tuple[float, float] = GRID_EXTENT, batch_size: int = 1024) -> Tensor:
    """The decoded n x n manifold of a 2-D latent on the Gaussian inverse-CDF grid between the
    quantiles ``extent``, tiled: (C, H*n, W*n)."""
    if model.latent_dim != 2:
        raise ValueError(f"the manifold grid needs a 2-D latent, this one has {model.latent_dim} dimensions")
    images = decode_batches(model, manifold_grid(n, *extent), batch_size)
    return tile(images, nrow=n, padding=0)
