"""Scoring single images against a model: reconstruction, ELBO / KL / IWAE, and how typical
an image is compared with the model's test set (its percentile among test-set ELBOs).

Pure functions, no Streamlit: the Reconstruct page lays out what these return.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .config import ModelConfig
from .evaluate import ImageScore, binarized, score_images
from .images import ImageError, Preprocessed, preprocess, to_pil
from .models import VAE
from .objectives import elbo_terms

REFERENCE_LIMIT = 1000  # test images scored for the percentile
SCORE_SAMPLES = 10  # Monte Carlo samples of the ELBO, for uploads and the reference alike
IWAE_K = 1000  # importance samples of the IWAE bound for an upload
BINARIZE_SEED = 0  # the fixed binarization (vae.evaluate.binarized) of uploads and test images


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's global RNG seeded, restoring the caller's RNG state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def uses_binarization(config: ModelConfig) -> bool:
    """Whether scores are computed on a fixed binarization of the images (Bernoulli, trained binarized)."""
    return config.likelihood == "bernoulli" and config.binarize


def scoring_input(x: Tensor, config: ModelConfig, seed: int = BINARIZE_SEED) -> Tensor:
    """What the model scores: x itself, or its fixed binarization when the model trained binarized.

    The same function serves uploads and the test-set reference, so both are scored alike.
    """
    return binarized(x, seed) if uses_binarization(config) else x


# --------------------------------------------------------------------------- reference and percentile


@torch.no_grad()
def reference_scores(
    model: VAE,
    x: Tensor,
    limit: int = REFERENCE_LIMIT,
    n_samples: int = SCORE_SAMPLES,
    seed: int = 0,
    batch_size: int = 250,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Per-image ELBO in nats of the first ``limit`` test images x (N, C, H, W): (min(N, limit),).

    Images go through :func:`scoring_input` first; for an AE the "ELBO" is the reconstruction
    log-likelihood (its KL is zero). Deterministic for a given ``seed``.
    """
    model.eval()
    x = scoring_input(x[:limit], model.config)
    out = []
    with seeded(seed):
        for i in range(0, len(x), batch_size):
            out.append(elbo_terms(model, x[i : i + batch_size].to(model.device), n_samples=n_samples).elbo.cpu())
            if progress:
                progress(min(i + batch_size, len(x)), len(x))
    return torch.cat(out).double().numpy() if out else np.zeros(0)


def percentile_of(score: float, reference: np.ndarray | Tensor | list[float]) -> float:
    """The percentage (0..100) of reference scores below ``score``; ties count half.

    ``percentile_of(50.5, range(1, 101))`` is 50.0; a score below every reference is 0,
    above every reference 100. NaN for a NaN score; ValueError for an empty reference.
    """
    ref = np.asarray(reference, dtype=np.float64).ravel()
    ref = ref[np.isfinite(ref)]
    if ref.size == 0:
        raise ValueError("the reference holds no finite scores")
    if not math.isfinite(score):
        if math.isnan(score):
            return float("nan")
        return 100.0 if score > 0 else 0.0
    below = np.count_nonzero(ref < score)
    equal = np.count_nonzero(ref == score)
    return float(100.0 * (below + 0.5 * equal) / ref.size)


def typicality(percentile: float) -> str:
    """A few words on what a percentile means for the image."""
    if math.isnan(percentile):
        return "unknown"
    if percentile < 1:
        return "atypical: lower than almost every test image (likely out of distribution)"
    if percentile < 5:
        return "unusual: in the lowest 5% of test images"
    if percentile < 25:
        return "somewhat unusual"
    if percentile > 99:
        return (
            "scores higher than almost every test image: simpler or cleaner than the data"
            " (a high likelihood alone does not prove an image is typical)"
        )
    return "typical for this model"


# --------------------------------------------------------------------------- one image


@dataclass
class Result:
    """One scored image, or the reason it could not be scored (``error`` set, the rest None)."""

    name: str
    error: str | None = None
    prep: Preprocessed | None = None
    x: Tensor | None = None  # (C, H, W): what the model encodes and scores
    recon: Tensor | None = None  # (C, H, W): decoder mean at the posterior mean
    score: ImageScore | None = None
    percentile: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def error_map(self) -> Tensor | None:
        """|x - x_hat| averaged over channels: (H, W) in [0, 1]."""
        if self.x is None or self.recon is None:
            return None
        return (self.x - self.recon).abs().mean(0)

    def row(self) -> dict[str, object]:
        """One row of the summary table."""
        s = self.score
        return {
            "file": self.name,
            "ELBO": s.elbo if s else None,
            "KL": s.kl if s else None,
            "IWAE": s.iwae if s else None,
            "percentile": self.percentile,
            "status": "ok" if self.ok else self.error,
        }


@torch.no_grad()
def score_one(
    name: str,
    x: Tensor,
    model: VAE,
    reference: np.ndarray | None = None,
    iwae_k: int = IWAE_K,
    n_samples: int = SCORE_SAMPLES,
    seed: int = 0,
    prep: Preprocessed | None = None,
) -> Result:
    """Reconstruct and score one model input x (C, H, W) in [0, 1]. Deterministic for a ``seed``."""
    model.eval()
    cfg = model.config
    if tuple(x.shape) != tuple(cfg.image_shape):
        return Result(name, error=f"{name}: the image is {tuple(x.shape)}, the model needs {cfg.image_shape}")
    notes = []
    xs = scoring_input(x.unsqueeze(0), cfg)[0]
    if uses_binarization(cfg):
        notes.append("binarized with a fixed seed, as the model trained on binarized images")
        if prep is not None:
            prep.steps.append(("binarized (model input)", thumbnail(to_pil(xs))))
    with seeded(seed):
        score = score_images(model, xs.unsqueeze(0), iwae_k=iwae_k, n_samples=n_samples)[0]
    recon = model.reconstruct(xs.unsqueeze(0).to(model.device))[0].cpu()
    pct = percentile_of(score.elbo, reference) if reference is not None and len(reference) else None
    return Result(name, prep=prep, x=xs, recon=recon, score=score, percentile=pct, notes=notes)


def process_upload(
    name: str,
    data: bytes | Image.Image,
    model: VAE,
    style: str = "plain",
    dark_background: bool = True,
    reference: np.ndarray | None = None,
    iwae_k: int = IWAE_K,
    n_samples: int = SCORE_SAMPLES,
    seed: int = 0,
    thumb_size: int | None = 112,
) -> Result:
    """Preprocess an uploaded file (or a drawn image) for the model and score it.

    ``style`` and ``dark_background`` are the checkpoint's data set's (see vae.images.preprocess).
    The preprocessing steps are kept as display thumbnails of ``thumb_size`` pixels (None: full
    size). An unusable file gives a Result whose ``error`` names the file and says why; bad
    input never raises.
    """
    try:
        prep = preprocess(data, model.config.image_shape, style=style, dark_background=dark_background)
    except ImageError as e:
        return Result(name, error=f"{name}: {e}")
    if thumb_size:
        prep.steps = [(label, thumbnail(img, thumb_size)) for label, img in prep.steps]
    result = score_one(name, prep.tensor, model, reference, iwae_k=iwae_k, n_samples=n_samples, seed=seed, prep=prep)
    if prep.inverted:
        result.notes.insert(0, "inverted: it has a light background, the model's images a dark one")
    return result


# --------------------------------------------------------------------------- pictures


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
