"""Scoring single images against a model: reconstruction, ELBO / KL / IWAE, and how typical
an image is compared with the model's test set (its percentile among test-set ELBOs).

Pure functions, no Streamlit: the Reconstruct page lays out what these return.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from vae.evaluate import ImageScore, score_images, split_terms
from vae.images import ImageError, Preprocessed, preprocess, to_pil
from vae.models import VAE
from vae.objectives import model_input

REFERENCE_LIMIT = 1000  # test images scored for the percentile
SCORE_SAMPLES = 10  # Monte Carlo samples of the ELBO, for uploads and the reference alike
IWAE_K = 1000  # importance samples of the IWAE bound for an upload


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

    Images go through ``model_input`` first (the model's one binarization rule); for an AE the "ELBO"
    is the reconstruction log-likelihood (its KL is zero). Deterministic for a given ``seed``.
    """
    model.eval()
    x = model_input(x[:limit], model.config)
    gen = torch.Generator(device=model.device).manual_seed(seed)
    out = []
    for i in range(0, len(x), batch_size):
        out.append(split_terms(model, x[i : i + batch_size], batch_size, n_samples, gen)[:, 0].cpu())
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
    xs = model_input(x.unsqueeze(0), cfg)[0]
    if cfg.binarize:
        notes.append("binarized with a fixed seed, as the model trained on binarized images")
        if prep is not None:
            prep.steps.append(("binarized (model input)", to_pil(xs)))
    score = score_images(model, xs.unsqueeze(0), iwae_k=iwae_k, n_samples=n_samples, seed=seed)[0]
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
) -> Result:
    """Preprocess an uploaded file (or a drawn image) for the model and score it.

    ``style`` and ``dark_background`` are the checkpoint's data set's (see vae.images.preprocess).
    The preprocessing steps are kept full size in ``result.prep.steps`` (the page makes the
    thumbnails). An unusable file gives a Result whose ``error`` names the file and says why; bad
    input never raises.
    """
    try:
        prep = preprocess(data, model.config.image_shape, style=style, dark_background=dark_background)
    except ImageError as e:
        return Result(name, error=f"{name}: {e}")
    result = score_one(name, prep.tensor, model, reference, iwae_k=iwae_k, n_samples=n_samples, seed=seed, prep=prep)
    if prep.inverted:
        result.notes.insert(0, "inverted: it has a light background, the model's images a dark one")
    return result


def score_test_image(
    name: str, x: Tensor, model: VAE, reference: np.ndarray | None = None, iwae_k: int = IWAE_K
) -> Result:
    """Score a test image x (C, H, W), already in the model's format, like :func:`score_one`."""
    result = score_one(name, x, model, reference, iwae_k=iwae_k)
    result.notes.append("a test image is already in the model's format: no preprocessing")
    return result


# --------------------------------------------------------------------------- many images


@dataclass(frozen=True)
class Request:
    """One image to score: a test image (its ``index`` in the test split) or a file's ``data``."""

    name: str
    index: int | None = None
    data: bytes | None = None


def score_all(
    requests: Sequence[Request],
    score: Callable[[Request], Result],
    progress: Callable[[int, int, str], None] | None = None,
) -> list[Result]:
    """``score`` each request in order; ``progress(i, n, name)`` before each.

    Never raises: an unexpected failure becomes a Result whose error names the image, so the user
    sees one message instead of a traceback.
    """
    out = []
    for i, req in enumerate(requests):
        if progress:
            progress(i, len(requests), req.name)
        try:
            out.append(score(req))
        except Exception as e:  # noqa: BLE001 - reported as one message naming the file
            out.append(Result(req.name, error=f"{req.name}: could not be scored ({e.__class__.__name__}: {e})"))
    return out


def summary_rows(results: Sequence[Result], deterministic: bool, has_reference: bool) -> list[dict[str, object]]:
    """The summary table's rows: an AE's "ELBO" is its reconstruction log-likelihood ``log p(x|ẑ)``
    (it has no KL or IWAE); without a reference there is no percentile column."""
    rows = [r.row() for r in results]
    for row in rows:
        if not has_reference:
            row.pop("percentile")
        if deterministic:
            row["log p(x|ẑ)"] = row.pop("ELBO")
            row.pop("KL")
            row.pop("IWAE")
    return rows
