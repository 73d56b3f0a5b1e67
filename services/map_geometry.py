"""The map's pure geometry, the same numbers as static/live/map_geometry.mjs (tests/js check both on the
same inputs): round axis ticks, the padded bounds of what is drawn, a position's code under a linear
inverse, the ellipses of 2x2 covariances and their outlines, and labels placed so that they do not collide.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

PAD = 0.05  # the home view adds this fraction of the data's span on each side
# Where a label may go around its anchor, in order of preference: (x, y) directions in screen pixels
# (y down): above, below, right, left, then the four diagonals.
LABEL_SPOTS = ((0, -1), (0, 1), (1, 0), (-1, 0), (1, -1), (-1, -1), (1, 1), (-1, 1))


def ticks(lo: float, hi: float, n: int = 6) -> tuple[list[float], float, int]:
    """About n round tick values covering [lo, hi], their step (1, 2 or 5 times a power of ten) and the
    decimals that print them."""
    if not hi > lo:
        return [lo], 1.0, 2
    raw = (hi - lo) / n
    mag = 10.0 ** math.floor(math.log10(raw))
    r = raw / mag
    step = mag * (10 if r >= 5 else 5 if r >= 2 else 2 if r >= 1.5 else 1)
    first = math.ceil(lo / step)
    out = []
    i = first
    while i * step <= hi + step * 1e-9:
        out.append(0.0 if abs(i * step) < step * 1e-9 else i * step)
        i += 1
    return out, step, max(0, -math.floor(math.log10(step)))


def bounds(x: Sequence[float], y: Sequence[float], pad: float = PAD) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1): the range of the points (x, y) widened by ``pad`` of their span on each side
    (a span of zero becomes ±1 around the value)."""
    x0, x1 = min(x), max(x)
    y0, y1 = min(y), max(y)
    if not x1 > x0:
        x0, x1 = x0 - 1, x0 + 1
    if not y1 > y0:
        y0, y1 = y0 - 1, y0 + 1
    px, py = pad * (x1 - x0), pad * (y1 - y0)
    return float(x0 - px), float(x1 + px), float(y0 - py), float(y1 + py)


def code_at(mean: np.ndarray, basis: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """The codes (M, D) at positions xy (M, 2) under the inverse z = mean + basisᵀ (x, y)."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    return (np.asarray(mean, np.float64) + xy @ np.asarray(basis, np.float64)).astype(np.float32)


def ellipse_axes(cov: np.ndarray) -> np.ndarray:
    """The ±1σ ellipses of 2×2 covariances (N, 2, 2) as (N, 3) rows (a, b, θ): semi-axes a ≥ b
    (the square roots of the eigenvalues) and the angle θ (radians, in (-π/2, π/2]) of the a axis
    from the x axis. The ±kσ ellipse has semi-axes k·a, k·b."""
    cov = np.asarray(cov, dtype=np.float64).reshape(-1, 2, 2)
    vals, vecs = np.linalg.eigh(cov)  # ascending eigenvalues
    a = np.sqrt(np.clip(vals[:, 1], 0.0, None))
    b = np.sqrt(np.clip(vals[:, 0], 0.0, None))
    theta = np.arctan2(vecs[:, 1, 1], vecs[:, 0, 1])
    theta = np.where(theta > np.pi / 2, theta - np.pi, np.where(theta <= -np.pi / 2, theta + np.pi, theta))
    return np.stack([a, b, theta], axis=1)


def ellipse_outline(centre: np.ndarray, axes: np.ndarray, k: float = 1.0, n: int = 49) -> np.ndarray:
    """The ±kσ ellipse (a, b, θ) around ``centre`` (2,) as n points (n, 2), closed (first = last)."""
    a, b, theta = (float(v) for v in axes)
    t = np.arange(n) * (2 * np.pi / (n - 1))
    c, s = math.cos(theta), math.sin(theta)
    u, v = k * a * np.cos(t), k * b * np.sin(t)
    return np.stack([centre[0] + c * u - s * v, centre[1] + s * u + c * v], axis=1)


def _overlaps(r: tuple[float, float, float, float], boxes: list[tuple[float, float, float, float]]) -> bool:
    return any(r[0] < b[2] and b[0] < r[2] and r[1] < b[3] and b[1] < r[3] for b in boxes)


def _inside(r: tuple[float, float, float, float], box: Sequence[float] | None) -> bool:
    return box is None or (r[0] >= box[0] and r[1] >= box[1] and r[2] <= box[2] and r[3] <= box[3])


def place_labels(
    anchors: Sequence[Sequence[float]],
    widths: Sequence[Sequence[float]],
    height: float,
    gap: float,
    box: Sequence[float] | None = None,
) -> list[list[int] | None]:
    """Where each anchor's label goes so that no two labels overlap and none covers an anchor: anchors
    (M, 2) in screen pixels (y down), each label's width in pixels as (full text, short text), one
    ``height``, ``gap`` the anchors' radius. Greedy in the anchors' order: the first free spot of
    ``LABEL_SPOTS`` for the full text, else for the short one; inside ``box`` (x0, y0, x1, y1) if given.
    Returns [spot index, 0 full | 1 short] per anchor, or None where neither fits (no label)."""
    taken = [(x - gap, y - gap, x + gap, y + gap) for x, y in anchors]
    out: list[list[int] | None] = []
    for (x, y), sizes in zip(anchors, widths):
        out.append(None)
        for variant, w in enumerate(sizes):
            for spot, (ux, uy) in enumerate(LABEL_SPOTS):
                cx, cy = x + ux * (gap + w / 2), y + uy * (gap + height / 2)
                rect = (cx - w / 2, cy - height / 2, cx + w / 2, cy + height / 2)
                inside = box is None or (
                    rect[0] >= box[0] and rect[1] >= box[1] and rect[2] <= box[2] and rect[3] <= box[3]
                )
                if inside and not _overlaps(rect, taken):
                    taken.append(rect)
                    out[-1] = [spot, variant]
                    break
            if out[-1] is not None:
                break
    return out


def label_offset(spot: int, width: float, height: float, gap: float) -> tuple[float, float]:
    """The label's centre relative to its anchor (screen pixels, y down) at ``spot`` of LABEL_SPOTS."""
    ux, uy = LABEL_SPOTS[spot]
    return ux * (gap + width / 2), uy * (gap + height / 2)
