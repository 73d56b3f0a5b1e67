"""Image preprocessing shared by image-folder data sets and user uploads.

One function turns bytes or a PIL image into a model input (C, H, W) float in [0, 1],
keeping each intermediate step so the app can show what happened to an upload.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

# Refuse images whose canvas is larger than this before decoding them (decompression bombs).
MAX_PIXELS = 40_000_000
MAX_FILE_BYTES = 20 * 1024 * 1024  # per file; Streamlit's server.maxUploadSize says the same
MAX_TOTAL_BYTES = 100 * 1024 * 1024  # per upload batch (Streamlit has no setting for a total)
# Larger images are shrunk to this longest side before the float work: far above any model size.
WORKING_SIDE = 1024

STYLES = ("digit", "digit-8x8", "centered", "plain")
DIGITS_SIDE = 8  # scikit-learn's digits (UCI optdigits): 8x8, the digit's height fills the frame
NOISE_FLOOR = 0.15  # ink below this fraction of the brightest stroke is treated as paper

# Decoders Pillow may use: the formats uploads and image folders accept (the JPEG decoder also
# reads phone cameras' multi-picture JPEGs, MPO). Others (EPS, PDF, ICO, ...) are refused; EPS
# would hand the bytes to Ghostscript.
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
FORMAT_NAMES = "PNG, JPEG, GIF, BMP, WebP or TIFF"
SUFFIXES = ("png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff")  # file names of those formats


class ImageError(ValueError):
    """The bytes are not an image this app can use; the message says why."""


@dataclass
class Preprocessed:
    """The model input and the named intermediate images (for display)."""

    tensor: torch.Tensor  # (C, H, W), float32 in [0, 1]
    steps: list[tuple[str, Image.Image]] = field(default_factory=list)
    inverted: bool = False


def limit_total(
    files: list[tuple[str, bytes]], max_total: int = MAX_TOTAL_BYTES
) -> tuple[list[tuple[str, bytes]], list[tuple[str, str]]]:
    """Keep (name, bytes) files in order while their sizes add up to at most ``max_total``.

    Returns the kept files and, for the others, (name, reason).
    """
    kept, refused, total = [], [], 0
    for name, data in files:
        if total + len(data) > max_total:
            refused.append((name, f"skipped: the upload is over the {max_total // 2**20} MB allowed in all"))
            continue
        total += len(data)
        kept.append((name, data))
    return kept, refused


def open_image(data: bytes | str | Path | Image.Image) -> Image.Image:
    """Open and fully decode the first frame of an image, refusing oversized canvases."""
    if isinstance(data, Image.Image):
        return data
    if isinstance(data, (str, Path)):
        path = Path(data)
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise ImageError(f"{path.name}: file is larger than {MAX_FILE_BYTES // 2**20} MB")
            data = path.read_bytes()
        except OSError as e:
            raise ImageError(f"{path.name}: cannot be read ({e.strerror or e})") from None
    if len(data) == 0:
        raise ImageError("the file is empty")
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"the file is larger than {MAX_FILE_BYTES // 2**20} MB")
    try:
        img = Image.open(io.BytesIO(data), formats=FORMATS)
        w, h = img.size  # read from the header: nothing decoded yet
        if w * h > MAX_PIXELS:
            raise ImageError(f"the image is {w}x{h} pixels, more than the {MAX_PIXELS:,} allowed")
        img.seek(0)  # first frame of an animation or a multi-page file
        img.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"not an image this app can read (it accepts {FORMAT_NAMES})") from None
    except Image.DecompressionBombError:
        raise ImageError(f"the image has more than the {MAX_PIXELS:,} pixels allowed") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ImageError(f"the image is damaged or truncated ({e})") from None
    return img


def _to_mode(img: Image.Image, channels: int) -> tuple[Image.Image, str | None]:
    """Flatten transparency onto the background that contrasts with the visible pixels and convert
    to L or RGB. Returns the image and the background's name ("black" or "white"; None if opaque)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        img = Image.fromarray(arr.astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    background = None
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = flatten_background(rgba)
        level = 0 if background == "black" else 255
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (level, level, level, 255)), rgba)
    return img.convert("L" if channels == 1 else "RGB"), background


def flatten_background(rgba: Image.Image) -> str:
    """The background to flatten an RGBA image onto: "black" when its visible pixels are mostly light,
    else "white".

    A white ring drawn on transparency flattened onto white would vanish: the content is kept by
    putting it on the background it contrasts with. Lightness is the alpha-weighted mean grey level;
    a fully transparent image has no content and keeps the usual white.
    """
    arr = np.asarray(rgba, dtype=np.float64)
    alpha = arr[..., 3] / 255.0
    weight = alpha.sum()
    if weight == 0:
        return "white"
    grey = arr[..., :3] @ np.array([0.299, 0.587, 0.114]) / 255.0  # (H, W): PIL's L conversion
    return "black" if float((grey * alpha).sum() / weight) > 0.5 else "white"


def digits_frame(x8: torch.Tensor, size: int) -> torch.Tensor:
    """scikit-learn's 8x8 digits (N, 1, 8, 8) in [0, 1] as the digits data set shows them: (N, 1, size, size).

    Padded by 2 to MNIST's 20-in-28 proportions, then resized bilinearly."""
    x = torch.nn.functional.pad(x8, (2, 2, 2, 2))
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.clamp(0, 1)


def _fit_8x8(ink: np.ndarray) -> np.ndarray:
    """optdigits' convention (UCI): the content's bounding box scaled to fill the 8 rows (or the 8 columns
    of a wide one), centred, each pixel the share of ink in its block: (8, 8)."""
    ys, xs = np.nonzero(ink > 0)
    if len(ys) == 0:
        return np.zeros((DIGITS_SIDE, DIGITS_SIDE), dtype=np.float32)
    crop = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = crop.shape
    scale = DIGITS_SIDE / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(Image.fromarray(crop).resize((nw, nh), Image.BOX), dtype=np.float32)  # block means
    out = np.zeros((DIGITS_SIDE, DIGITS_SIDE), dtype=np.float32)
    top, left = (DIGITS_SIDE - nh) // 2, (DIGITS_SIDE - nw) // 2
    out[top : top + nh, left : left + nw] = small
    return out / max(float(out.max()), 1e-12)


def _center_by_mass(arr: np.ndarray, size: int, box: int) -> np.ndarray:
    """MNIST-style: fit the content's bounding box into box x box, then put its centre of
    mass at the centre of a size x size canvas (LeCun et al.'s preprocessing)."""
    ys, xs = np.nonzero(arr > 0.1 * arr.max()) if arr.max() > 0 else (np.array([]), np.array([]))
    if len(ys) == 0:
        return np.asarray(Image.fromarray(arr).resize((size, size), Image.BILINEAR))
    crop = arr[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = crop.shape
    scale = box / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(Image.fromarray(crop).resize((nw, nh), Image.LANCZOS), dtype=np.float32)
    small = np.clip(small, 0, None)
    canvas = np.zeros((size, size), dtype=np.float32)
    total = small.sum()
    if total > 0:
        cy = (small.sum(1) * np.arange(nh)).sum() / total
        cx = (small.sum(0) * np.arange(nw)).sum() / total
    else:
        cy, cx = nh / 2, nw / 2
    top = int(round(size / 2 - cy))
    left = int(round(size / 2 - cx))
    top = min(max(top, 0), size - nh)
    left = min(max(left, 0), size - nw)
    canvas[top : top + nh, left : left + nw] = small
    return canvas


def preprocess(
    data: bytes | str | Path | Image.Image,
    image_shape: tuple[int, int, int],
    style: str = "plain",
    dark_background: bool = True,
) -> Preprocessed:
    """Turn an image into a model input of ``image_shape`` (C, H, W), values in [0, 1].

    Steps: EXIF orientation, alpha flattened onto the background that keeps the visible pixels
    visible (black under light content, else white), grey or RGB, inverted when the data
    set has a dark background and the image a light one, then by ``style``:
    ``digit`` crops and centres by mass in a 20/28 box (MNIST's convention), ``digit-8x8`` makes it one of
    scikit-learn's 8x8 digits (:func:`digits_frame`), ``centered`` crops with a margin, ``plain`` only resizes.
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}")
    c, h, w = image_shape
    img = open_image(data)
    steps: list[tuple[str, Image.Image]] = [("original", img.copy() if isinstance(data, Image.Image) else img)]
    try:
        img = ImageOps.exif_transpose(img) or img
    except Exception:  # broken EXIF must not lose the image
        pass
    steps.append(("orientation fixed", img))
    img, background = _to_mode(img, c)
    mode = "grey" if c == 1 else "RGB"
    steps.append((f"alpha flattened onto {background}, {mode}" if background else mode, img))
    if max(img.size) > WORKING_SIDE:  # a photo: work on a smaller copy (seconds and GBs saved)
        img = img.copy()
        img.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.LANCZOS, reducing_gap=3.0)
        steps.append((f"shrunk to {img.width}x{img.height}", img))

    plain = style == "plain" or c == 3
    # Plain images stay 8-bit PIL images to the end (the path every streamed training image takes);
    # the float array is made only where the border test or the ink path needs it.
    arr = np.asarray(img, dtype=np.float32) / 255.0 if dark_background or not plain else None  # (H, W[, 3])
    inverted = False
    if dark_background:
        grey = arr if arr.ndim == 2 else arr.mean(-1)
        border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
        if float(np.median(border)) > 0.5:
            arr = 1.0 - arr
            img = ImageOps.invert(img)  # 255 - v: the same pixels as 1 - v/255, in 8 bits
            inverted = True
            steps.append(("inverted (light background)", img))

    if plain:
        small = img.resize((w, h), Image.BILINEAR)
        out = np.asarray(small, dtype=np.float32) / 255.0
        steps.append((f"resized to {w}x{h}", small))
    else:
        box = round(min(h, w) * (20 / 28 if style == "digit" else 24 / 28))
        # Subtract the background so that paper, even unevenly lit, does not count as ink.
        ink = np.clip(arr - _background(arr), 0, 1)
        if ink.max() > 0:
            ink = ink / ink.max()
        ink[ink < NOISE_FLOOR] = 0  # paper grain and JPEG ringing
        steps.append(("background removed", _to_pil(ink)))
        if style == "digit-8x8":
            x8 = _fit_8x8(ink)
            steps.append(("fitted to 8x8 (the digits' frame)", _to_pil(x8)))
            out = digits_frame(torch.from_numpy(x8)[None, None], h)[0, 0].numpy()
        else:
            out = _center_by_mass(ink, h, box)
        out = np.asarray(Image.fromarray(out).resize((w, h), Image.BILINEAR)) if (h != w) else out
        out = np.clip(out, 0, 1)
        steps.append((f"cropped, centred, resized to {w}x{h}", _to_pil(out)))
    tensor = torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))
    tensor = tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1)
    return Preprocessed(tensor=tensor.clamp(0, 1).contiguous(), steps=steps, inverted=inverted)


def _background(arr: np.ndarray) -> np.ndarray:
    """The paper's level under the ink (H, W): a minimum filter wider than a pen stroke, on a
    small copy, then smoothed (flat-field correction). Ink is bright here (already inverted)."""
    h, w = arr.shape
    scale = min(1.0, 96 / max(h, w))
    small = _to_pil(arr).resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
    size = max(3, (min(small.size) // 6) | 1)  # odd, about a sixth of the image
    bg = small.filter(ImageFilter.MinFilter(size)).filter(ImageFilter.GaussianBlur(size / 2))
    bg = np.asarray(bg.resize((w, h), Image.BILINEAR), dtype=np.float32) / 255.0
    border = np.median(np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]]))
    return np.maximum(bg, border)  # never below the frame's own level


def _to_pil(arr: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(arr, 0, 1) * 255).round().astype(np.uint8))


def to_pil(x: torch.Tensor, scale: int = 1) -> Image.Image:
    """A model image (C, H, W) in [0, 1] -> PIL image, enlarged ``scale`` times (nearest)."""
    arr = x.detach().cpu().clamp(0, 1).numpy()
    arr = arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)
    img = _to_pil(arr)
    if scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    return img


def tile(images: torch.Tensor, nrow: int, padding: int = 2, pad_value: float = 0.0) -> torch.Tensor:
    """(N, C, H, W) -> one (C, H', W') image, ``nrow`` images a row, ``padding`` pixels around each.

    Like torchvision's make_grid, but it keeps grey images grey and spares the app the
    two seconds that importing torchvision adds to its start.
    """
    n, c, h, w = images.shape
    ncol = max(1, min(nrow, n))
    rows = -(-n // ncol)
    full = images.new_full((rows * ncol, c, h, w), pad_value)
    full[:n] = images
    full = torch.nn.functional.pad(full, (padding, 0, padding, 0), value=pad_value)  # left and top of each
    hp, wp = h + padding, w + padding
    grid = full.view(rows, ncol, c, hp, wp).permute(2, 0, 3, 1, 4).reshape(c, rows * hp, ncol * wp)
    return torch.nn.functional.pad(grid, (0, padding, 0, padding), value=pad_value)
