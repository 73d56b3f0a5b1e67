"""The registry of map projections: each way to draw codes (N, D) in 2-D is one small object in one
file of this package (``raw.py``, ``pca.py``, ``svd.py``, ``tsne.py``), found here by its module-level
``PROJECTION``. The Latent map page, its live view, the fallback figure and the page's text read it.

A projection ``fit``s codes to a :class:`Fit`, which places new codes (uploads), goes back from a
position to a code where it can (``inverse``) and shows a posterior q(z|x) in the plane
(``covariance``). A linear projection only has to give its map ``xy = (z - mean) Wᵀ`` as a
:class:`LinearFit`; an embedding without a formula for new points (t-SNE) gives a :class:`NeighbourFit`.

Adding a projection: a new file here with ``PROJECTION = MyProjection()`` and its test.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from services.explore import nearest
from services.jobs import Report
from vae.distributions import projected_covariance


def as_codes(codes: np.ndarray | Tensor) -> np.ndarray:
    """Codes as a contiguous float32 (N, D) array (a clear error for any other shape)."""
    x = codes.detach().cpu().numpy() if isinstance(codes, Tensor) else np.asarray(codes)
    if x.ndim != 2:
        raise ValueError(f"codes must be (N, D), got shape {x.shape}")
    return np.ascontiguousarray(x, dtype=np.float32)


def neighbours(reference: np.ndarray | Tensor, queries: np.ndarray | Tensor, k: int) -> np.ndarray:
    """Indices (M, k) of the k nearest reference rows (Euclidean) of each query, nearest first."""
    return nearest(torch.from_numpy(as_codes(reference)), torch.from_numpy(as_codes(queries)), k)[1].numpy()


class Fit(Protocol):
    """A fitted projection: the (N, 2) positions ``xy`` of the codes it was fitted on, and the rest."""

    xy: np.ndarray

    def place(self, x: np.ndarray) -> np.ndarray:
        """Positions (M, 2) of new codes x (M, D)."""
        ...

    def inverse(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(mean (D,), basis (2, D))`` with z = mean + basisᵀ (x, y) for a position (x, y), or None."""
        ...

    def covariance(self, var: np.ndarray) -> np.ndarray | None:
        """The (N, 2, 2) covariances in the plane of posteriors N(μ, diag(var)) (var (N, D)), or None."""
        ...


@dataclass
class LinearFit:
    """A linear map xy = (z - mean) Wᵀ with W (2, D). Its inverse sends (x, y) to the code
    mean + W⁺ (x, y) on the plane (W⁺ the pseudo-inverse: Wᵀ when W's rows are orthonormal), and
    q(z|x) = N(μ, diag σ²) becomes N(W(μ - mean), W diag(σ²) Wᵀ) on the map."""

    mean: np.ndarray
    w: np.ndarray
    xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))

    @classmethod
    def of(cls, x: np.ndarray, mean: np.ndarray, w: np.ndarray) -> LinearFit:
        """The fit of codes x (N, D) by the map (mean (D,), W (2, D))."""
        fit = cls(np.asarray(mean, np.float64), np.asarray(w, np.float64))
        fit.xy = fit.place(x)
        return fit

    def place(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, np.float64) - self.mean) @ self.w.T).astype(np.float32)

    def inverse(self) -> tuple[np.ndarray, np.ndarray]:
        orthonormal = np.allclose(self.w @ self.w.T, np.eye(2), atol=1e-9)
        basis = self.w if orthonormal else np.linalg.pinv(self.w).T
        return self.mean.copy(), np.array(basis, dtype=np.float64)

    def covariance(self, var: np.ndarray) -> np.ndarray:
        v = torch.from_numpy(np.asarray(var, np.float64))
        return projected_covariance(v, torch.from_numpy(self.w.T.copy())).numpy()


@dataclass
class NeighbourFit:
    """An embedding ``xy`` (N, 2) of ``codes`` (N, D) with no formula for new points: a new code goes to
    the mean position of its ``k`` nearest codes in latent space; no inverse, no covariance."""

    xy: np.ndarray
    codes: np.ndarray
    k: int = 10

    def place(self, x: np.ndarray) -> np.ndarray:
        return self.xy[neighbours(self.codes, x, self.k)].mean(axis=1).astype(np.float32)

    def inverse(self) -> None:
        return None

    def covariance(self, var: np.ndarray) -> None:
        return None


@dataclass(frozen=True)
class Projection:
    """One registry entry. ``name`` is its key (and the widget's value), ``title`` what the page calls
    it, ``axis`` the stem of its axis titles ("PC" -> "PC 1", "PC 2"; None: the axes are z's own first
    two dimensions), ``about`` its paragraph of the page's explanation (Markdown), ``hover`` how a
    position on it decodes (None: it has no inverse), ``order`` its place in the list. A ``background``
    projection is slow: the page computes it in the background and caches its positions on disk."""

    name: str = ""
    title: str = ""
    axis: str | None = None
    about: str = ""
    hover: str | None = None
    order: int = 100
    background: bool = False

    def offered(self, latent_dim: int) -> bool:
        """Whether this projection makes sense for codes of ``latent_dim`` dimensions."""
        return latent_dim >= 2

    def fit(self, x: np.ndarray, progress: Report | None = None) -> Fit:
        """Fit codes x (N, D) float32."""
        raise NotImplementedError

    def cache_key(self, x: np.ndarray) -> str:
        """A background projection's disk-cache key for these exact codes (N, D)."""
        raise NotImplementedError


def _discover() -> dict[str, Projection]:
    found: list[Projection] = []
    for info in pkgutil.iter_modules(__path__):
        module: Any = importlib.import_module(f"{__name__}.{info.name}")
        entry = getattr(module, "PROJECTION", None)
        if isinstance(entry, Projection):
            found.append(entry)
    return {p.name: p for p in sorted(found, key=lambda p: (p.order, p.name))}


REGISTRY: dict[str, Projection] = _discover()


def get(name: str) -> Projection:
    """The projection called ``name`` (a clear error for an unknown one)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown map method {name!r}: one of {', '.join(REGISTRY)}") from None


def offered(latent_dim: int) -> list[str]:
    """The names of the projections offered for codes of ``latent_dim`` dimensions, in list order."""
    return [p.name for p in REGISTRY.values() if p.offered(latent_dim)]
