"""What the live views are sent: the JSON-ready ``data`` of ui/components/interpolate.js (the
scrubber) and ui/components/latent_map.js (the hover map, static/live/map_view.mjs), built from codes, maps and images.

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
from services.live import URL_PREFIX
from services.map_overlays import XY_DECIMALS
from services.maps import LatentMap, inverse_projection
from vae.images import tile, to_pil


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
    overlays: Sequence[Mapping] = (),
    axis_titles: tuple[str, str] = ("", ""),
    note: str = "",
) -> dict:
    """The hover map's data: the points ``lmap.xy`` (N, 2) with their labels (N,), the ``overlays``
    (services.map_overlays: ellipses, rings, the uploads' stars, ...), the images of points and uploads
    as one :func:`sprite_sheet` (points first), ``inverse`` = {mean (D,), basis (2, D)} with
    z = mean + basisᵀ · (x, y), or None (no inverse: t-SNE), and ``note``: how a position decodes."""
    xy = np.round(np.asarray(lmap.xy, dtype=np.float64), XY_DECIMALS)
    inverse = inverse_projection(lmap)
    return {
        "view_url": f"{URL_PREFIX}/live/map_view.mjs",
        "method": lmap.method,
        "x": xy[:, 0].tolist(),
        "y": xy[:, 1].tolist(),
        "label": np.asarray(labels, dtype=np.int64).tolist(),
        "names": [str(s) for s in label_names],
        "colours": list(colours),
        "inverse": None if inverse is None else {"mean": inverse[0].tolist(), "basis": inverse[1].tolist()},
        "axes": list(axis_titles),
        "note": note,
        "sprite": dict(sprite),
        "overlays": [dict(d) for d in overlays],
    }
