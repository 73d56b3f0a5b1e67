"""Scoring single images against a model: reconstruction, ELBO / KL / IWAE, and whether an image is
typical for the model: the input-complexity test of Serrà et al. 2020, against the model's test set.

Typicality. A likelihood alone is no verdict: simple images (a blank page) get a higher likelihood
than the data themselves (Nalisnick et al. 2019). Serrà et al. ("Input complexity and out-of-distribution
detection with likelihood-based generative models", ICLR 2020) compare the model's codelength of x with
that of a generic compressor, which stands in for a universal model p_0(x) = 2^-L(x):

    S(x) = -log2 p(x) - L(x) = log2 [p_0(x) / p(x)]   (bits; higher: less typical)

-S(x) is the number of bits the model saves over the compressor. Test images save many (the model
knows their structure); a blank page saves few (the compressor finds it just as simple); noise saves
none. Here -log2 p(x) is estimated from above by -ELBO / ln 2 (an AE: its reconstruction codelength
-log2 p(x|ẑ)), so S is an upper estimate: the slack, KL(q(z|x) || p(z|x)), tends to be larger for
inputs unlike the data. L(x) is the length of zlib's raw deflate stream (level 9) of the image in the
form the likelihood scores (:func:`complexity_bits`).

An image is typical when it passes four tests, each calibrated on the test images: its limit is a
percentile of their values (PERCENTILES: 99.5, 99, 99.5 and 99.5), so together they flag at most 2.5% of
them (benchmarks/typicality.py measures 2.2-3.0% on held-out test images):

- ``simple``: S(x) above the limit (the model saves fewer bits over the compressor than on its data);
- ``unlikely``: -log2 p(x) alone above the limit: a likelihood fails in one direction only (too high
  for simple inputs), so its low tail remains evidence, and it catches inputs that both the model and
  the small compressor find costly (noise);
- ``unexplained``: the reconstruction's distortion, the mean squared error per pixel between x and
  x_hat (the decoder's mean at the posterior mean), above the limit: the model does not explain the
  image. S alone misses images of another data set whose codelength is as low as the data's: a digit
  on a moons model is coded in about as few bits as a moon (fewer pixels are lit), yet its
  reconstruction is a moon. The distortion does not reward simple images, nor does it penalise them.
  (The posterior mean's distance to the nearest test code was measured too, and is no test here: the
  encoder maps a digit among the moons' codes; it flagged 7-18% of MNIST digits on the moons models.)
- ``levels``: the grey levels of the image's lit pixels (before any binarization), coded with the test
  images' histogram of levels (:func:`level_counts`): the mean codelength per lit pixel above the limit.
  A first-order model of the data that neither the model nor S looks at: the models score a grey disk
  (a moon after MNIST's crop-and-centre) much like a fat 0, yet MNIST's strokes are mostly full white
  with thin grey edges, and a shaded moon is grey throughout. (Measured and no test here, on moons on the
  MNIST models: the distance to the nearest test image in pixels, plain, cosine or relative to the
  neighbours' own (LOF), flagged 0-20%; the aggregate posterior's density of the code 0%; the IWAE-ELBO
  gap 1-8%; the distortion relative to the code's neighbours' 9%. A thin crescent is a stroke like a 1 or
  a "(" to every one of them, and passes.)

The tests say which of them failed (``Typicality.failed``); the words are the UI's.

Pure functions, no Streamlit: the Reconstruct page lays out what these return.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from vae.config import ModelConfig
from vae.evaluate import ImageScore, score_images, split_terms
from vae.images import ImageError, Preprocessed, preprocess, to_pil
from vae.models import VAE
from vae.objectives import model_input

REFERENCE_LIMIT = 1000  # test images scored for the reference
SCORE_SAMPLES = 10  # Monte Carlo samples of the ELBO, for uploads and the reference alike
IWAE_K = 1000  # importance samples of the IWAE bound for an upload
# S(x), -log2 p(x), distortion, grey levels: the order they are reported in
TESTS = ("simple", "unlikely", "unexplained", "levels")
# The percentile of the test images' values above which each test fails. -log2 p(x) keeps its 99th: noise on
# mnist-vae-2d lies between its 99th and 99.5th percentiles, and no other test catches it there
# (benchmarks/typicality.py); S, the distortion and the grey levels take 0.5% each: 2.5% in all.
PERCENTILES = {"simple": 99.5, "unlikely": 99.0, "unexplained": 99.5, "levels": 99.5}
LEVEL_BINS = 16  # grey levels of the levels test: level 0 (x < 1/16) is the background, 1..15 the lit pixels
NOTES = ("inverted", "binarized", "test image")  # Result.notes: a light background inverted, a fixed binarization,
# a test image taken as it is (no preprocessing)
COMPLEXITY_DRAWS = 4  # binarizations of a grey image averaged for L(x) under a Bernoulli decoder
COMPLEXITY_SEED = 0


# --------------------------------------------------------------------------- codelengths


def codelength_bits(log_likelihood: np.ndarray | float, config: ModelConfig) -> np.ndarray:
    """-log2 p(x) in bits from a (lower bound on the) log-likelihood in nats: (N,) -> (N,).

    Bernoulli: -ELBO / ln 2. Gaussian: the density becomes the probability of the 8-bit image's cell
    (width 1/255 in each of the D values), which adds D log2 255 bits, so that both codelengths in S
    are of the same 8-bit image.
    """
    bits = -np.asarray(log_likelihood, dtype=np.float64) / math.log(2)
    if config.likelihood == "gaussian":
        bits = bits + math.prod(config.image_shape) * math.log2(255)
    return bits


def _deflate_bits(data: bytes) -> int:
    # Raw deflate (no zlib header or checksum): the fixed 48 bits of the container say nothing of x.
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return 8 * len(c.compress(data) + c.flush())


@torch.no_grad()
def complexity_bits(
    x: Tensor, config: ModelConfig, draws: int = COMPLEXITY_DRAWS, seed: int = COMPLEXITY_SEED
) -> np.ndarray:
    """L(x): bits of zlib's deflate stream (level 9) of each model input x (N, C, H, W) in [0, 1]: (N,).

    The compressor codes the object the likelihood scores. Gaussian decoder: the 8-bit values, a byte
    each. Bernoulli decoder: binary images, 8 pixels a byte; a grey image is scored by a Bernoulli
    decoder as its random binarizations b ~ Bernoulli(x) (-ELBO(x) bounds the mean of -log p(b) over
    them), so its L is the mean over ``draws`` binarizations with a fixed ``seed``: deterministic.
    """
    x = x.detach().cpu().float().clamp(0, 1).flatten(1)  # (N, D)
    if config.likelihood != "bernoulli":
        u8 = (x * 255).round().to(torch.uint8).numpy()
        return np.array([_deflate_bits(row.tobytes()) for row in u8], dtype=np.float64)
    gen = torch.Generator().manual_seed(seed)
    out = np.empty(len(x))
    for i, row in enumerate(x):
        binary = bool(((row == 0) | (row == 1)).all())
        bs = [row] if binary else [torch.bernoulli(row, generator=gen) for _ in range(draws)]
        out[i] = np.mean([_deflate_bits(np.packbits(b.numpy() > 0.5).tobytes()) for b in bs])
    return out


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


def distortion(x: Tensor, recon: Tensor) -> np.ndarray:
    """The mean squared error per pixel between model inputs x and their reconstructions (N, C, H, W): (N,)."""
    return (x.detach().cpu().double() - recon.detach().cpu().double()).pow(2).flatten(1).mean(1).numpy()


@torch.no_grad()
def reconstruction_distortion(model: VAE, x: Tensor, batch_size: int = 500) -> np.ndarray:
    """:func:`distortion` of model inputs x (N, C, H, W) and the decoder's mean at their posterior means: (N,).
    Deterministic (no sampling)."""
    model.eval()
    out = [
        distortion(xb, model.reconstruct(xb.to(model.device)))
        for xb in (x[i : i + batch_size] for i in range(0, len(x), batch_size))
    ]
    return np.concatenate(out) if out else np.zeros(0)


def level_counts(x: Tensor) -> np.ndarray:
    """How many pixels of each image x (N, C, H, W) in [0, 1] fall in each lit grey level (1..LEVEL_BINS - 1,
    of width 1 / LEVEL_BINS; level 0, the background, is left out): (N, LEVEL_BINS - 1)."""
    v = x.detach().cpu().double().clamp(0, 1).flatten(1)  # (N, D)
    levels = (v * LEVEL_BINS).long().clamp(max=LEVEL_BINS - 1)
    counts = torch.zeros(len(v), LEVEL_BINS, dtype=torch.float64).scatter_add_(1, levels, torch.ones_like(v))
    return counts[:, 1:].numpy()


def level_model(counts: np.ndarray) -> np.ndarray:
    """The test images' histogram of lit grey levels from their ``level_counts`` (N, B): probabilities (B,),
    each count plus one (Laplace), so that no level costs infinitely many bits."""
    pooled = np.asarray(counts, dtype=np.float64).sum(0) + 1.0
    return pooled / pooled.sum()


def level_bits(counts: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Mean bits per lit pixel of each image's grey levels under the histogram ``probs``: (N, B) -> (N,).
    0 for an image without a lit pixel (a blank page: the S test's case)."""
    counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    lit = counts.sum(1)
    return (counts @ -np.log2(probs)) / np.maximum(lit, 1.0)


def _limit(values: np.ndarray, test: str) -> float:
    return float(np.percentile(values, PERCENTILES[test]))


@dataclass(frozen=True)
class Reference:
    """The test images' scores that a verdict is measured against, each (N,)."""

    elbo: np.ndarray  # nats: the ELBO (an AE: log p(x|ẑ))
    codelength: np.ndarray  # bits: -log2 p(x), estimated from the ELBO (codelength_bits)
    complexity: np.ndarray  # bits: L(x)
    distortion: np.ndarray  # mean (x - x_hat)^2 per pixel
    levels: np.ndarray  # bits per lit pixel of the image's grey levels under ``level_probs``
    level_probs: np.ndarray  # (LEVEL_BINS - 1,): the test images' histogram of lit grey levels (level_model)

    @property
    def s(self) -> np.ndarray:
        """S(x) = -log2 p(x) - L(x) of each test image (N,), in bits."""
        return self.codelength - self.complexity

    @property
    def s_limit(self) -> float:
        """The PERCENTILES["simple"]-th percentile of the test images' S: above it, atypical."""
        return _limit(self.s, "simple")

    @property
    def codelength_limit(self) -> float:
        """The PERCENTILES["unlikely"]-th percentile of the test images' -log2 p(x): above it, atypical."""
        return _limit(self.codelength, "unlikely")

    @property
    def distortion_limit(self) -> float:
        """The PERCENTILES["unexplained"]-th percentile of the test images' distortion: above it, atypical."""
        return _limit(self.distortion, "unexplained")

    @property
    def levels_limit(self) -> float:
        """The PERCENTILES["levels"]-th percentile of the test images' grey-level bits: above it, atypical."""
        return _limit(self.levels, "levels")

    def levels_of(self, x: Tensor) -> np.ndarray:
        """Bits per lit pixel of the grey levels of images x (N, C, H, W) in [0, 1], before any binarization,
        under the test images' histogram: (N,)."""
        return level_bits(level_counts(x), self.level_probs)

    def failed(
        self, codelength: np.ndarray, complexity: np.ndarray, distortion: np.ndarray, levels: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Test name (TESTS) -> whether each image (N,) fails it, from its -log2 p(x), L(x), distortion and
        grey-level bits (N,)."""
        codelength, complexity = np.asarray(codelength), np.asarray(complexity)
        return {
            "simple": codelength - complexity > self.s_limit,
            "unlikely": codelength > self.codelength_limit,
            "unexplained": np.asarray(distortion) > self.distortion_limit,
            "levels": np.asarray(levels) > self.levels_limit,
        }

    def typical(
        self, codelength: np.ndarray, complexity: np.ndarray, distortion: np.ndarray, levels: np.ndarray
    ) -> np.ndarray:
        """Whether each image passes every test: (N,)."""
        return ~np.any(list(self.failed(codelength, complexity, distortion, levels).values()), axis=0)

    def __len__(self) -> int:
        return len(self.elbo)


def typicality_reference(model: VAE, x: Tensor, limit: int = REFERENCE_LIMIT, **scoring: Any) -> Reference:
    """The Reference of the first ``limit`` test images x (N, C, H, W), scored as uploads are
    (``model_input``, the ELBO of ``reference_scores`` with its ``scoring`` options, L and the
    distortion of the model input; the grey levels of x itself, before any binarization). Deterministic."""
    elbo = reference_scores(model, x, limit=limit, **scoring)
    xs = model_input(x[:limit], model.config)
    counts = level_counts(x[:limit])
    probs = level_model(counts)
    return Reference(
        elbo,
        codelength_bits(elbo, model.config),
        complexity_bits(xs, model.config),
        reconstruction_distortion(model, xs),
        level_bits(counts, probs),
        probs,
    )


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


@dataclass(frozen=True)
class Typicality:
    """One image against the Reference: its codelengths in bits, its distortion, and where they fall."""

    codelength: float  # -log2 p(x) (an AE: -log2 p(x|ẑ))
    complexity: float  # L(x)
    distortion: float  # mean (x - x_hat)^2 per pixel
    levels: float  # bits per lit pixel of its grey levels under the test images' histogram
    percentile: float  # of S(x) among the test images' S: the share with a lower S (more typical)
    codelength_percentile: float  # of -log2 p(x) among the test images'
    distortion_percentile: float  # of the distortion among the test images'
    levels_percentile: float  # of the grey-level bits among the test images'
    s_limit: float
    codelength_limit: float
    distortion_limit: float
    levels_limit: float
    n: int  # test images in the reference

    @property
    def s(self) -> float:
        """S(x) = -log2 p(x) - L(x) in bits."""
        return self.codelength - self.complexity

    def limits(self) -> dict[str, tuple[float, float]]:
        """Each test's value and its test images' limit, by name (TESTS, in order): S(x) (too simple: the
        model saves fewer bits over the compressor than on them), -log2 p(x) (unlikely: costly to code), the
        distortion (unexplained: the reconstruction is not the image), the grey-level bits (odd levels)."""
        return {
            "simple": (self.s, self.s_limit),
            "unlikely": (self.codelength, self.codelength_limit),
            "unexplained": (self.distortion, self.distortion_limit),
            "levels": (self.levels, self.levels_limit),
        }

    @property
    def failed(self) -> tuple[str, ...]:
        """The names (TESTS, in order) of the tests the image fails: empty when it is typical."""
        return tuple(t for t, (value, limit) in self.limits().items() if value > limit)

    @property
    def typical(self) -> bool:
        return not self.failed


def judge(
    log_likelihood: float,
    complexity: float,
    distortion: float,
    levels: float,
    reference: Reference,
    config: ModelConfig,
) -> Typicality:
    """An image's Typicality from its ELBO in nats (an AE: log p(x|ẑ)), its L(x) in bits, its distortion and
    its grey-level bits (``Reference.levels_of``)."""
    codelength = float(codelength_bits(log_likelihood, config))
    return Typicality(
        codelength=codelength,
        complexity=float(complexity),
        distortion=float(distortion),
        levels=float(levels),
        percentile=percentile_of(codelength - complexity, reference.s),
        codelength_percentile=percentile_of(codelength, reference.codelength),
        distortion_percentile=percentile_of(float(distortion), reference.distortion),
        levels_percentile=percentile_of(float(levels), reference.levels),
        s_limit=reference.s_limit,
        codelength_limit=reference.codelength_limit,
        distortion_limit=reference.distortion_limit,
        levels_limit=reference.levels_limit,
        n=len(reference),
    )


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
    codelength: float | None = None  # -log2 p(x) in bits, from the ELBO (an AE: -log2 p(x|ẑ))
    complexity: float | None = None  # L(x) in bits
    distortion: float | None = None  # mean (x - x_hat)^2 per pixel
    typicality: Typicality | None = None  # None without a test-set reference
    notes: list[str] = field(default_factory=list)  # NOTES: what was done to the image (the UI words them)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def s(self) -> float | None:
        """S(x) = -log2 p(x) - L(x) in bits (higher: less typical)."""
        return None if self.codelength is None or self.complexity is None else self.codelength - self.complexity

    @property
    def percentile(self) -> float | None:
        """The percentile of S(x) among the test images' S values (None without a reference)."""
        return self.typicality.percentile if self.typicality else None

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
            "S": self.s,
            "percentile": self.percentile,
            "verdict": self.typicality.failed if self.typicality else None,  # the failed tests; () typical
            "status": "ok" if self.ok else self.error,
        }


@torch.no_grad()
def score_one(
    name: str,
    x: Tensor,
    model: VAE,
    reference: Reference | None = None,
    iwae_k: int = IWAE_K,
    n_samples: int = SCORE_SAMPLES,
    seed: int = 0,
    prep: Preprocessed | None = None,
) -> Result:
    """Reconstruct and score one model input x (C, H, W) in [0, 1], and judge it against the test
    images' ``reference`` when there is one. Deterministic for a ``seed``."""
    model.eval()
    cfg = model.config
    if tuple(x.shape) != tuple(cfg.image_shape):
        return Result(name, error=f"{name}: the image is {tuple(x.shape)}, the model needs {cfg.image_shape}")
    notes = []
    xs = model_input(x.unsqueeze(0), cfg)[0]
    if cfg.binarize:
        notes.append("binarized")
        if prep is not None:
            prep.steps.append(("binarized (model input)", to_pil(xs)))
    score = score_images(model, xs.unsqueeze(0), iwae_k=iwae_k, n_samples=n_samples, seed=seed)[0]
    recon = model.reconstruct(xs.unsqueeze(0).to(model.device))[0].cpu()
    complexity = float(complexity_bits(xs.unsqueeze(0), cfg)[0])
    dist = float(distortion(xs.unsqueeze(0), recon.unsqueeze(0))[0])
    # The verdict uses the ELBO, never the IWAE: the test images' reference is ELBOs, and the two
    # sides must be the same estimator.
    has_ref = reference is not None and len(reference)
    levels = float(reference.levels_of(x.unsqueeze(0))[0]) if has_ref else None  # x: before binarization
    typ = judge(score.elbo, complexity, dist, levels, reference, cfg) if has_ref else None
    return Result(
        name,
        prep=prep,
        x=xs,
        recon=recon,
        score=score,
        codelength=float(codelength_bits(score.elbo, cfg)),
        complexity=complexity,
        distortion=dist,
        typicality=typ,
        notes=notes,
    )


def process_upload(
    name: str,
    data: bytes | Image.Image,
    model: VAE,
    style: str = "plain",
    dark_background: bool = True,
    reference: Reference | None = None,
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
        result.notes.insert(0, "inverted")
    return result


def score_test_image(
    name: str, x: Tensor, model: VAE, reference: Reference | None = None, iwae_k: int = IWAE_K
) -> Result:
    """Score a test image x (C, H, W), already in the model's format, like :func:`score_one`."""
    result = score_one(name, x, model, reference, iwae_k=iwae_k)
    result.notes.append("test image")
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
    (it has no KL or IWAE); without a reference there is no percentile nor verdict column."""
    rows = []
    for row in (r.row() for r in results):
        if not has_reference:
            del row["percentile"], row["verdict"]
        if deterministic:
            elbo = row.pop("ELBO")
            del row["KL"], row["IWAE"]
            row = {"file": row.pop("file"), "log p(x|ẑ)": elbo, **row}
        rows.append(row)
    return rows
