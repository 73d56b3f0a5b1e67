"""What is drawn on the Latent map over its points, described once as JSON-ready layers that both the
live view (static/live/map_overlays.mjs) and the fallback figure (ui.figures.map_figure) draw.

A layer is ``{"id", "kind", ...}``; ``ui.figures.styled`` adds its ``name`` and ``style``. Kinds:

- ``rect``: ``x`` [x0, x1], ``y`` [y0, y1] (the manifold grid's square);
- ``ellipses``: the ±``k``σ ellipses with ``axes`` [a, b, θ] (see services.map_geometry.ellipse_axes)
  around the map's points ``at`` (indices; each drawn in its point's label colour unless styled);
- ``rings``: circles around the map's points ``at`` (the nearest codes in latent space to point ``of``);
- ``stars``: uploads at ``x``, ``y`` (M,) with their names ``text`` and ``short`` ones ("1", "2", ...)
  for where a name would collide (services.map_geometry.place_labels).

Ellipses are only drawn for a projection with a covariance (raw, PCA, SVD: not t-SNE) and a model with σ.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from services.map_geometry import bounds, ellipse_axes
from services.maps import LatentMap, projected_covariances

XY_DECIMALS = 4  # map positions and semi-axes: far below a pixel of the canvas, and a third of the JSON


def _rounded(a: np.ndarray) -> list:
    return np.round(np.asarray(a, dtype=np.float64), XY_DECIMALS).tolist()


def ellipse_layers(lmap: LatentMap, std: np.ndarray | None, pick: int | None, clouds: bool) -> list[dict]:
    """The posterior ellipses: every shown point's ±1σ (``clouds``) and the picked point's ±1σ and ±2σ.
    None of them for an AE (``std`` None) or a projection without a covariance."""
    n = len(lmap.xy)
    cov = None if std is None else projected_covariances(std[:n], lmap)
    if cov is None:
        return []
    axes = ellipse_axes(cov)
    layers = []
    if clouds:
        layers.append({"id": "clouds", "kind": "ellipses", "k": 1, "at": list(range(n)), "axes": _rounded(axes)})
    if pick is not None and 0 <= pick < n:
        for k in (1, 2):
            layers.append(
                {"id": f"pick{k}", "kind": "ellipses", "k": k, "at": [int(pick)], "axes": _rounded(axes[[pick]])}
            )
    return layers


def map_overlays(
    lmap: LatentMap,
    std: np.ndarray | None = None,
    pick: int | None = None,
    clouds: bool = False,
    near: Sequence[int] = (),
    upload_xy: np.ndarray | None = None,
    upload_names: Sequence[str] = (),
    square: tuple[float, float] | None = None,
) -> list[dict]:
    """Every layer over the map's points (N,): the grid's ``square`` [lo, hi]², the posterior ellipses
    (σ (N, D) ``std``, the ``pick``ed point, ``clouds``), rings at the picked point's nearest codes ``near``,
    the uploads (M, 2) as stars. Pure: the same inputs give the same layers, so the view is not re-mounted."""
    layers: list[dict] = []
    if square is not None:
        lo, hi = (float(v) for v in square)
        layers.append({"id": "square", "kind": "rect", "x": [lo, hi], "y": [lo, hi]})
    layers += ellipse_layers(lmap, std, pick, clouds)
    if len(near):
        layers.append({"id": "neighbours", "kind": "rings", "of": pick, "at": [int(j) for j in near]})
    if upload_xy is not None and len(upload_xy):
        up = _rounded(np.asarray(upload_xy).reshape(-1, 2))
        layers.append(
            {
                "id": "uploads",
                "kind": "stars",
                "x": [p[0] for p in up],
                "y": [p[1] for p in up],
                "text": [str(s) for s in upload_names],
                "short": [str(u + 1) for u in range(len(up))],
            }
        )
    return layers


def layer(layers: Sequence[dict], id_: str) -> dict | None:
    """The layer called ``id_``, or None."""
    return next((d for d in layers if d["id"] == id_), None)


def extent(x: Sequence[float], y: Sequence[float], layers: Sequence[dict]) -> tuple[float, float, float, float]:
    """The home view (x0, x1, y0, y1): the points (x, y), the stars and the rectangles, padded
    (services.map_geometry.bounds; static/live/map_overlays.mjs ``extent`` is the same)."""
    xs, ys = list(x), list(y)
    for d in layers:
        if d["kind"] in ("stars", "rect"):
            xs += d["x"]
            ys += d["y"]
    return bounds(xs, ys)
