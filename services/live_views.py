"""What the live views are sent: the JSON-ready ``data`` of ui/components/interpolate.js (the
scrubber) and ui/components/latent_map.js (the hover map), built from codes, maps and images.

A view's JavaScript runs again whenever its ``data`` changes, so everything here is a pure
function of its inputs: the same path or map gives the same payload, byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from services.explore import png_bytes
from services.maps import LatentMap, ellipse_axes, inverse_projection, projected_covariances
from vae.images import tile, to_pil

XY_DECIMALS = 4  # map positions: far below a pixel of the canvas, and a third of the JSON


def floats(x: Tensor | np.ndarray) -> list[float]:
    """A vector as plain floats at float32 precision (what the browser's decoder gets)."""
    return [float(v) for v in np.asarray(x, dtype=np.float32).reshape(-1)]


def digest(payload: Any) -> str:
    """A short name of a JSON-ready value (the views tag what they send back with it)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def sprite_sheet(images: Tensor) -> dict:
    """Images (N, C, H, W) in [0, 1] as one PNG, a grid of ``cols`` images a row with no padding
    (image i at column i % cols, row i // cols), as a data URL: one download, no file to serve."""
    n, _, h, w = images.shape
    cols = max(1, math.ceil(math.sqrt(n)))
    sheet = tile(images.detach().cpu().float(), nrow=cols, padding=0) if n else torch.zeros(images.shape[1], h, w)
    url = "data:image/png;base64," + base64.b64encode(png_bytes(to_pil(sheet))).decode()
    return {"url": url, "cols": cols, "n": int(n), "width": int(w), "height": int(h)}


def scrub_payload(paths: Sequence[tuple[str, Mapping, Tensor, Tensor]], method: str) -> dict:
    """The scrubber's data: per model (title, its LiveDecoder.data(), z_A (D,), z_B (D,)) and the path
    ("linear" or "slerp", as services.explore.path_at). ``path`` names it all: a released t is
    only meant for the path it was chosen on."""
    models = [{"title": t, "decoder": dict(dec), "za": floats(za), "zb": floats(zb)} for t, dec, za, zb in paths]
    body = {"method": method, "models": models}
    return {**body, "path": digest(body)}


def released_t(state: Mapping | None, payload: Mapping) -> float | None:
    """The t the scrubber was released at (its state ``{"t", "path"}``), if it was on this path."""
    got = (state or {}).get("t")
    if not isinstance(got, Mapping) or got.get("path") != payload["path"]:
        return None
    try:
        t = float(got["t"])
    except (KeyError, TypeError, ValueError):
        return None
    return min(1.0, max(0.0, t)) if math.isfinite(t) else None


def map_payload(
    lmap: LatentMap,
    labels: np.ndarray,
    label_names: Sequence[str],
    colours: Sequence[str],
    sprite: Mapping,
    upload_xy: np.ndarray | None = None,
    upload_names: Sequence[str] = (),
    axis_titles: tuple[str, str] = ("", ""),
    square: tuple[float, float] | None = None,
    ellipses: Mapping | None = None,
) -> dict:
    """The hover map's data: the points ``lmap.xy`` (N, 2) with their labels (N,), the uploads
    (M, 2) as stars, the images of both as one :func:`sprite_sheet` (points first), and
    ``inverse`` = {mean (D,), basis (2, D)} with z = mean + basisᵀ · (x, y), or None (t-SNE), and
    ``ellipses`` (see :func:`ellipse_payload`) or None."""
    xy = np.round(np.asarray(lmap.xy, dtype=np.float64), XY_DECIMALS)
    up = np.round(np.asarray(upload_xy if upload_xy is not None else np.zeros((0, 2)), dtype=np.float64), XY_DECIMALS)
    inverse = inverse_projection(lmap)
    return {
        "method": lmap.method,
        "x": xy[:, 0].tolist(),
        "y": xy[:, 1].tolist(),
        "label": np.asarray(labels, dtype=np.int64).tolist(),
        "names": [str(s) for s in label_names],
        "colours": list(colours),
        "uploads": [{"x": float(p[0]), "y": float(p[1]), "name": str(nm)} for p, nm in zip(up, upload_names)],
        "inverse": None if inverse is None else {"mean": inverse[0].tolist(), "basis": inverse[1].tolist()},
        "axes": list(axis_titles),
        "square": list(square) if square is not None else None,
        "sprite": dict(sprite),
        "ellipses": None if ellipses is None else dict(ellipses),
    }


def _axes_list(axes: np.ndarray) -> list[list[float]]:
    return np.round(np.asarray(axes, dtype=np.float64).reshape(-1, 3), XY_DECIMALS).tolist()


def ellipse_payload(lmap: LatentMap, std: np.ndarray | None, pick: int | None, clouds: bool) -> dict | None:
    """The posterior ellipses the map draws: ``pick`` (the selected point's index, or None) with its
    ``axes`` [a, b, θ] (the ±1σ ellipse; the view draws ×1 and ×2), and ``all`` (N rows [a, b, θ]) when
    ``clouds``, else None. None when there is nothing to draw (an AE: no σ; t-SNE: no projection)."""
    if std is None:
        return None
    n = len(lmap.xy)
    cov = projected_covariances(std[:n], lmap)
    if cov is None:
        return None
    axes = ellipse_axes(cov)
    ok = pick is not None and 0 <= pick < n
    return {
        "pick": int(pick) if ok else None,
        "axes": _axes_list(axes[pick])[0] if ok else None,
        "all": _axes_list(axes) if clouds else None,
    }
