"""Display pictures: the error heat map and its colour bar, thumbnails, a drawing from the canvas.

PIL / NumPy only (no Streamlit), so that the pages' pictures can be tested on their own.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from torch import Tensor

# Anchor colours of a perceptually ordered black -> purple -> orange -> yellow map (like inferno).
_CMAP = np.array(
    [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21], [250, 193, 39]]
    + [[252, 255, 164]],
    dtype=np.float64,
)


def colormap(values: np.ndarray, vmax: float = 1.0) -> np.ndarray:
    """Values (H, W) in [0, vmax] -> RGB uint8 (H, W, 3) on a black-to-yellow scale."""
    t = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64)) / max(vmax, 1e-12), 0, 1)
    pos = t * (len(_CMAP) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(_CMAP) - 2)
    frac = (pos - lo)[..., None]
    rgb = _CMAP[lo] * (1 - frac) + _CMAP[lo + 1] * frac
    return rgb.round().astype(np.uint8)


def heatmap_image(err: Tensor | np.ndarray, scale: int = 4, vmax: float = 1.0) -> Image.Image:
    """An error map (H, W) as a coloured image enlarged ``scale`` times (nearest neighbour)."""
    arr = err.detach().cpu().numpy() if isinstance(err, Tensor) else np.asarray(err)
    img = Image.fromarray(colormap(arr, vmax), "RGB")
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST) if scale != 1 else img


def colorbar_image(width: int = 112, height: int = 10) -> Image.Image:
    """A horizontal colour bar for :func:`heatmap_image` (0 on the left, vmax on the right)."""
    ramp = np.tile(np.linspace(0, 1, width), (height, 1))
    return Image.fromarray(colormap(ramp), "RGB")


def thumbnail(img: Image.Image, size: int = 112, square: bool = True) -> Image.Image:
    """An image fitted into size x size for display: small images enlarged with sharp pixels,
    large ones shrunk smoothly, odd modes made displayable. With ``square`` the result is
    exactly size x size, centred on a transparent canvas, so a row of steps lines up."""
    if img.mode not in ("L", "RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.getbands() or "transparency" in img.info else "RGB")
    w, h = img.size
    scale = size / max(w, h, 1)
    if scale >= 2:
        k = int(scale)  # a small image: an integer factor keeps its pixels square and sharp
        img = img.resize((w * k, h * k), Image.NEAREST)
    elif (w, h) != (size, size):
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
    if not square or img.size == (size, size):
        return img
    canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    canvas.paste(img.convert("RGBA"), ((size - img.width) // 2, (size - img.height) // 2))
    return canvas


def drawing(rgba: np.ndarray | None, background: str) -> Image.Image | None:
    """A canvas's RGBA pixels (H, W, 4) flattened onto its background colour as RGB, or None when
    there is no drawing (no pixels, an unexpected shape, or a blank canvas)."""
    if rgba is None or rgba.ndim != 3 or rgba.shape[-1] != 4:
        return None
    img = Image.alpha_composite(Image.new("RGBA", (rgba.shape[1], rgba.shape[0]), background), Image.fromarray(rgba))
    if np.asarray(img.convert("L")).std() == 0:  # nothing was drawn yet
        return None
    return img.convert("RGB")


def labelled_rows(grid: Image.Image, labels: list[str], margin: int = 44, size: int = 14) -> Image.Image:
    """A grid image with ``len(labels)`` equal rows, each row's label written in a margin on its left."""
    from PIL import ImageDraw, ImageFont  # only this figure needs them

    out = Image.new(grid.mode, (grid.width + margin, grid.height), 0 if grid.mode == "L" else (0, 0, 0))
    out.paste(grid, (margin, 0))
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=size)
    row = grid.height / max(1, len(labels))
    white = 255 if grid.mode == "L" else (255, 255, 255)
    for r, text in enumerate(labels):
        draw.text((margin - 6, (r + 0.5) * row), text, fill=white, font=font, anchor="rm")
    return out
