"""2-D maps of latent codes: fit (raw, PCA, t-SNE), place new codes, cache t-SNE, run it in the background.

Pure NumPy / PyTorch / openTSNE, no UI library: the figure is ``ui.figures.map_figure``.

- ``fit_map(codes, method)`` -> ``LatentMap`` with the (N, 2) positions of raw codes or PCA;
  ``LatentMap.place(new)`` puts new codes on a map: PCA transforms them, raw takes their first two
  dimensions, t-SNE (which has no out-of-sample map) puts each at the mean position of its k nearest
  map codes in latent space.
- ``DiskCache`` stores t-SNE results as ``<key>.npy`` with atomic writes; ``tsne_key`` names a result by
  a hash of the codes themselves and the settings, so a changed checkpoint never reads a stale map.
- ``tsne_map_async`` computes t-SNE in the background (``services.jobs.Runner``) through that cache;
  ``current_map`` is what the Latent map page draws now (PCA stands in while t-SNE computes).
- ``settle_state`` makes a session's saved map settings valid for the model at hand.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from services.explore import decode_batches, manifold_grid, nearest
from services.jobs import RUNNER, Job, Report, Runner
from services.registry import REPO_ROOT
from vae.checkpoint import atomic_write
from vae.images import ImageError, preprocess, tile

METHODS = ("raw", "pca", "tsne")
METHOD_NAMES = {"raw": "raw (z₁, z₂)", "pca": "PCA", "tsne": "t-SNE"}
MAX_POINTS = 10_000
GRID_EXTENT = (0.05, 0.95)  # the manifold grid spans these quantiles of N(0, 1) in each coordinate


def _as_array(codes: np.ndarray | Tensor) -> np.ndarray:
    x = codes.detach().cpu().numpy() if isinstance(codes, Tensor) else np.asarray(codes)
    if x.ndim != 2:
        raise ValueError(f"codes must be (N, D), got shape {x.shape}")
    return np.ascontiguousarray(x, dtype=np.float32)


def _raw(x: np.ndarray) -> np.ndarray:
    """The first two dimensions (a 1-D code gets a zero second coordinate)."""
    if x.shape[1] >= 2:
        return x[:, :2].copy()
    return np.concatenate([x, np.zeros_like(x)], axis=1)


def methods_for(latent_dim: int) -> list[str]:
    """The methods offered for a latent size: raw codes only make sense for a 2-D (or 1-D) latent."""
    return list(METHODS) if latent_dim <= 2 else ["pca", "tsne"]


# --------------------------------------------------------------------------- PCA


@dataclass
class Pca:
    """Principal components by an SVD of the centred codes (NumPy: no scikit-learn import, a few ms).

    ``components`` (k, D) are the leading right singular vectors, each signed so that its largest
    entry is positive (a deterministic choice); ``transform`` gives (M, k) coordinates.
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, k: int) -> Pca:
        x = _as_array(x).astype(np.float64)
        mean = x.mean(axis=0)
        _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
        vt = vt[:k]
        signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)])
        vt = vt * np.where(signs == 0, 1.0, signs)[:, None]
        return cls(mean, vt, (s[:k] ** 2) / max(1, len(x) - 1))

    def transform(self, x: np.ndarray | Tensor) -> np.ndarray:
        return ((_as_array(x).astype(np.float64) - self.mean) @ self.components.T).astype(np.float32)


# --------------------------------------------------------------------------- t-SNE


@dataclass(frozen=True)
class TsneSettings:
    """FFT-accelerated t-SNE (openTSNE, Poličar et al. 2024; FIt-SNE, Linderman et al. 2019), tuned for speed.

    PCA to at most ``pca_dims`` first, exact nearest neighbours (10,000 codes of 32 dimensions take under
    a second brute force; Annoy took 6 s), PCA initialisation (Kobak & Berens 2019), ``exploration_iter``
    early-exaggeration iterations (factor 12) out of ``max_iter`` in all (openTSNE's defaults: 250 + 500),
    openTSNE's learning rate N / exaggeration (Belkina et al. 2019). ``intervals`` is how many embedding
    units one cell of the FFT interpolation grid spans (openTSNE's ``ints_in_interval``, default 1): 2 makes
    the grid coarser as the map expands, 20 % faster on 10,000 MNIST codes for a trustworthiness 0.001
    lower (benchmarks/map_latency.py). Below ``fft_from`` points the FFT grid's minimum size costs more than
    it saves (3 s for 200 points), and scikit-learn's Barnes-Hut t-SNE (van der Maaten 2014; ``angle``,
    ``small_max_iter`` iterations, learning rate N / 48) is as fast as openTSNE's and keeps more: on 2,000
    MNIST codes 1.6 s and trustworthiness 0.944 against 1.8 s and 0.934.
    ``threads`` caps the OpenMP threads (None: half the cores, at least one): on a busy machine OpenMP
    threads that compete for cores make t-SNE many times slower, not faster.
    """

    perplexity: float = 30.0
    max_iter: int = 250
    exploration_iter: int = 100
    intervals: float = 2.0
    fft_from: int = 3000
    angle: float = 0.7
    small_max_iter: int = 300
    pca_dims: int = 50
    seed: int = 0
    threads: int | None = None

    def tag(self) -> str:
        return (
            f"p{self.perplexity:g}-it{self.max_iter}-ex{self.exploration_iter}-i{self.intervals:g}-fft{self.fft_from}"
            f"-a{self.angle:g}-sit{self.small_max_iter}-pca{self.pca_dims}-s{self.seed}"
        )


FAST_TSNE = TsneSettings()
PROGRESS_EVERY = 5  # iterations between progress reports: each report makes openTSNE evaluate the KL divergence


def tsne_threads(settings: TsneSettings = FAST_TSNE) -> int:
    """OpenMP threads for t-SNE: ``settings.threads``, else half the cores (at least one)."""
    return settings.threads or max(1, (os.cpu_count() or 2) // 2)


def _import_opentsne() -> Any:
    try:
        import openTSNE
    except ImportError as e:  # a hard dependency (requirements.txt); say so rather than fail obscurely
        raise RuntimeError("t-SNE needs openTSNE: pip install -r requirements.txt") from e
    return openTSNE


def tsne_embedding(
    codes: np.ndarray | Tensor, settings: TsneSettings = FAST_TSNE, progress: Report | None = None
) -> np.ndarray:
    """t-SNE of codes (N, D) -> (N, 2) float32, the same for the same codes and settings: openTSNE's FFT
    gradient from ``settings.fft_from`` points, scikit-learn's Barnes-Hut below.
    ``progress(fraction, message)`` is called as it goes (every ``PROGRESS_EVERY`` iterations); an
    exception it raises (e.g. ``Cancelled``) stops the computation."""
    from threadpoolctl import threadpool_limits

    x = _as_array(codes)
    n = len(x)
    if n < 4:
        raise ValueError(f"t-SNE needs at least 4 points, got {n}")
    report = progress or (lambda f, m: None)
    report(0.0, "PCA")
    if x.shape[1] > settings.pca_dims:
        x = Pca.fit(x, settings.pca_dims).transform(x)
    # openTSNE takes 3 * perplexity neighbours, which must be fewer than the other points.
    perplexity = float(min(settings.perplexity, max(1.0, (n - 1) / 3.0)))
    threads = tsne_threads(settings)
    run = _opentsne if n >= settings.fft_from else _sklearn_tsne
    report(0.02, "nearest neighbours and affinities")
    # OpenMP's thread count is per calling thread: this limit does not touch the rest of the process.
    with threadpool_limits(limits=threads, user_api="openmp"):
        y = run(x, perplexity, settings, threads, report)
    report(1.0, "done")
    return np.ascontiguousarray(y, dtype=np.float32)


def _iteration_counter(total: int, report: Report) -> Any:
    count = [0]

    def tick(every: int) -> None:
        count[0] += every
        if count[0] % PROGRESS_EVERY == 0 or count[0] >= total:
            report(0.1 + 0.9 * min(count[0], total) / total, f"iteration {count[0]} of {total}")

    return tick


def _opentsne(x: np.ndarray, perplexity: float, settings: TsneSettings, threads: int, report: Report) -> np.ndarray:
    open_tsne = _import_opentsne()
    exploration = min(settings.exploration_iter, settings.max_iter)
    tick = _iteration_counter(max(1, settings.max_iter), report)

    def on_iterations(iteration: int, error: float, embedding: np.ndarray) -> bool:
        tick(PROGRESS_EVERY)  # openTSNE restarts ``iteration`` in each phase: count across both
        return False  # go on

    tsne = open_tsne.TSNE(
        n_components=2,
        perplexity=perplexity,
        early_exaggeration_iter=exploration,
        n_iter=settings.max_iter - exploration,
        initialization="pca",
        neighbors="exact",
        knn_kwargs={"algorithm": "brute"},  # a tree is slower for tens of dimensions
        negative_gradient_method="fft",
        ints_in_interval=settings.intervals,
        n_jobs=threads,
        random_state=settings.seed,
        callbacks=on_iterations,
        callbacks_every_iters=PROGRESS_EVERY,
        verbose=False,
    )
    return np.asarray(tsne.fit(x))


_LOCAL = threading.local()  # the calling thread's iteration callback, for the hook below


def _install_progress_hook() -> None:
    """Count scikit-learn's Barnes-Hut gradient evaluations (one per t-SNE iteration): it has no progress
    callback, so its module-level objective is wrapped once, calling the *current thread's* callback (if
    any). Best effort: if scikit-learn's internals change, t-SNE still runs, only without progress."""
    from sklearn.manifold import _t_sne

    fn = getattr(_t_sne, "_kl_divergence_bh", None)
    if fn is None or getattr(fn, "_vae_progress_hook", False):
        return

    def hooked(*args: Any, **kwargs: Any) -> Any:
        cb = getattr(_LOCAL, "on_iteration", None)
        if cb is not None:
            cb(1)
        return fn(*args, **kwargs)

    hooked._vae_progress_hook = True  # type: ignore[attr-defined]
    _t_sne._kl_divergence_bh = hooked


def _sklearn_tsne(x: np.ndarray, perplexity: float, settings: TsneSettings, threads: int, report: Report) -> np.ndarray:
    from sklearn.manifold import TSNE

    total = max(250, settings.small_max_iter)  # scikit-learn's least

    class _Tsne(TSNE):
        _EXPLORATION_MAX_ITER = min(settings.exploration_iter, total)

    tsne = _Tsne(
        n_components=2,
        perplexity=perplexity,
        init="pca",
        learning_rate="auto",
        max_iter=total,
        angle=settings.angle,
        random_state=settings.seed,
        n_jobs=threads,
    )
    _install_progress_hook()
    _LOCAL.on_iteration = _iteration_counter(total, report)
    try:
        return tsne.fit_transform(x)
    finally:
        _LOCAL.on_iteration = None


# --------------------------------------------------------------------------- maps


@dataclass
class LatentMap:
    """A 2-D map of codes: ``xy`` (N, 2) are the positions of ``codes`` (N, D)."""

    method: str
    xy: np.ndarray
    codes: np.ndarray
    k: int = 10  # neighbours used to place new codes on a t-SNE map
    pca: Pca | None = None  # the fitted projection for method "pca"

    def place(self, codes: np.ndarray | Tensor) -> np.ndarray:
        """Positions (M, 2) of new codes (M, D) on this map."""
        x = _as_array(codes)
        if x.shape[1] != self.codes.shape[1]:
            raise ValueError(f"codes have {x.shape[1]} dimensions, the map's have {self.codes.shape[1]}")
        if len(x) == 0:
            return np.zeros((0, 2), dtype=np.float32)
        if self.method == "raw":
            return _raw(x)
        if self.method == "pca":
            assert self.pca is not None
            return self.pca.transform(x)
        idx = neighbours(self.codes, x, self.k)
        return self.xy[idx].mean(axis=1).astype(np.float32)


def inverse_projection(lmap: LatentMap) -> tuple[np.ndarray, np.ndarray] | None:
    """How a position (x, y) on the map goes back to a code: ``(mean (D,), basis (2, D))`` with
    z = mean + basisᵀ · (x, y); None for t-SNE, which has no inverse.

    Raw codes: z = (x, y) (any further dimensions at 0). PCA: the fitted mean and the two components,
    so a position gives the code on the plane of the two components (it undoes ``Pca.transform`` on it).
    """
    d = lmap.codes.shape[1]
    if lmap.method == "raw":
        return np.zeros(d), np.eye(2, d)
    if lmap.method == "pca":
        assert lmap.pca is not None
        return lmap.pca.mean.copy(), lmap.pca.components[:2].copy()
    return None


def unproject(lmap: LatentMap, xy: np.ndarray) -> np.ndarray:
    """Codes (M, D) of positions xy (M, 2) on a raw or PCA map (see :func:`inverse_projection`)."""
    inverse = inverse_projection(lmap)
    if inverse is None:
        raise ValueError(f"a {METHOD_NAMES[lmap.method]} map has no inverse")
    mean, basis = inverse
    return (mean + np.asarray(xy, dtype=np.float64).reshape(-1, 2) @ basis).astype(np.float32)


def projected_covariances(std: np.ndarray | Tensor, lmap: LatentMap) -> np.ndarray | None:
    """The posterior q(z|x) = N(μ, diag(σ²)) of each code seen in the map's plane: (N, 2, 2) covariances
    of the projected Gaussians, from σ (N, D); None for t-SNE, which has no linear projection.

    Raw codes: diag(σ₁², σ₂²) (a 1-D code gets 0 in the second coordinate). PCA: Wᵀ diag(σ²) W with
    W (D, 2) the two components, the covariance of the projection of z ~ q(z|x).
    """
    s = _as_array(std).astype(np.float64)
    if lmap.method == "raw":
        s2 = _raw(s) ** 2
        cov = np.zeros((len(s), 2, 2))
        cov[:, 0, 0], cov[:, 1, 1] = s2[:, 0], s2[:, 1]
        return cov
    if lmap.method == "pca":
        assert lmap.pca is not None
        w = lmap.pca.components[:2].T  # (D, 2)
        return np.einsum("dk,nd,dl->nkl", w, s**2, w)
    return None


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
    t = np.linspace(0.0, 2 * np.pi, n)
    c, s = np.cos(theta), np.sin(theta)
    u, v = k * a * np.cos(t), k * b * np.sin(t)
    return np.stack([centre[0] + c * u - s * v, centre[1] + s * u + c * v], axis=1)


@torch.no_grad()
def encode_std(model: Any, x: Tensor, batch_size: int = 1000) -> np.ndarray | None:
    """σ (N, D) of q(z|x) for images x, or None for a deterministic model (an AE has no σ)."""
    model.eval()
    out = []
    for i in range(0, len(x), batch_size):
        q = model.encode(x[i : i + batch_size].to(model.device))
        if q.deterministic:
            return None
        out.append(q.std.cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, model.latent_dim), dtype=np.float32)


def neighbours(reference: np.ndarray | Tensor, queries: np.ndarray | Tensor, k: int) -> np.ndarray:
    """Indices (M, k) of the k nearest reference rows (Euclidean) of each query, nearest first."""
    return nearest(torch.from_numpy(_as_array(reference)), torch.from_numpy(_as_array(queries)), k)[1].numpy()


def fit_map(codes: np.ndarray | Tensor, method: str = "pca") -> LatentMap:
    """Fit a 2-D map of codes (N, D) with ``raw`` or ``pca`` (t-SNE runs in the background:
    :func:`tsne_map_async`). PCA of 1-D codes gives the raw map."""
    if method not in ("raw", "pca"):
        raise ValueError(f"method must be raw or pca (t-SNE: tsne_map_async), got {method!r}")
    x = _as_array(codes)
    if method == "raw" or x.shape[1] < 2:
        return LatentMap("raw", _raw(x), x)
    pca = Pca.fit(x, 2)
    return LatentMap("pca", pca.transform(x), x, pca=pca)


# --------------------------------------------------------------------------- disk cache

_KEY = re.compile(r"[A-Za-z0-9_.-]{1,128}")


def default_cache_dir() -> Path:
    """$VAE_CACHE_DIR, else .cache/ under the repository root (git-ignored)."""
    return Path(os.environ.get("VAE_CACHE_DIR") or REPO_ROOT / ".cache")


class DiskCache:
    """NumPy arrays on disk, one ``<key>.npy`` per key."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir() / "tsne"

    def path(self, key: str) -> Path:
        if not isinstance(key, str) or not _KEY.fullmatch(key) or key.startswith("."):
            raise ValueError(f"bad cache key {key!r}")
        return self.root / f"{key}.npy"

    def load(self, key: str) -> np.ndarray | None:
        """The array stored under key, or None if there is none (or it cannot be read)."""
        p = self.path(key)
        try:
            return np.load(p, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None

    def save(self, key: str, array: np.ndarray) -> Path:
        p = self.path(key)
        atomic_write(p, lambda f: np.save(f, np.asarray(array), allow_pickle=False))
        return p


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:  # pragma: no cover
        return "?"


def _opentsne_version() -> str:
    return _package_version("openTSNE")


def _sklearn_version() -> str:
    return _package_version("scikit-learn")


def tsne_key(codes: np.ndarray | Tensor, settings: TsneSettings = FAST_TSNE) -> str:
    """A cache key for the t-SNE of these exact codes with these settings, by this library and version
    (openTSNE; maps made by scikit-learn's t-SNE before are not read back)."""
    x = _as_array(codes)
    h = hashlib.sha256()
    library = f"openTSNE {_opentsne_version()}" if len(x) >= settings.fft_from else f"sklearn {_sklearn_version()}"
    h.update(f"tsne|{settings.tag()}|{library}|{x.shape}|".encode())
    h.update(x.tobytes())
    return f"tsne-{x.shape[0]}-{h.hexdigest()[:32]}"


def tsne_map_async(
    codes: np.ndarray | Tensor,
    settings: TsneSettings = FAST_TSNE,
    cache: DiskCache | None = None,
    runner: Runner | None = None,
) -> tuple[LatentMap | None, Job | None, str]:
    """The t-SNE map of codes if it is ready (from disk or a finished job), else start computing it.

    Returns ``(map or None, job or None, key)``: a map means ready; no map and a job means poll the job
    (``runner.get(key)``); a job in state ``error`` says why it failed (``runner.forget(key)`` to retry).
    """
    cache = cache or DiskCache()
    runner = runner or RUNNER
    x = _as_array(codes)
    key = tsne_key(x, settings)
    stored = cache.load(key)
    if stored is not None and stored.shape == (len(x), 2) and np.isfinite(stored).all():
        return LatentMap("tsne", stored.astype(np.float32), x), None, key
    job = runner.get(key)
    if job is not None and job.state == "done":
        return job.result, job, key
    if job is not None and job.state == "error":
        return None, job, key

    def compute(progress: Report) -> LatentMap:
        xy = tsne_embedding(x, settings, progress)
        try:
            cache.save(key, xy)
        except OSError:  # a read-only disk only costs the next visit a recomputation
            pass
        return LatentMap("tsne", xy, x)

    return None, runner.submit(key, compute), key


# --------------------------------------------------------------------------- the page's map


@dataclass
class MapView:
    """What the Latent map draws now: ``lmap``; for t-SNE also its cache ``tsne_key``, and whether
    PCA stands in because t-SNE is still ``waiting`` or failed (``error`` says why)."""

    lmap: LatentMap
    tsne_key: str | None = None
    waiting: bool = False
    error: str | None = None


def current_map(
    codes: np.ndarray | Tensor,
    method: str,
    previous_tsne: str | None = None,
    settings: TsneSettings = FAST_TSNE,
    cache: DiskCache | None = None,
    runner: Runner | None = None,
) -> MapView:
    """The map of codes (N, D) by ``method`` without waiting: a t-SNE not ready yet is started in the
    background and PCA stands in. ``previous_tsne`` is the key this session asked for before: a
    different one is cancelled, so that an abandoned map does not hold the CPU."""
    if method != "tsne":
        return MapView(fit_map(codes, method))
    runner = runner or RUNNER
    lmap, job, key = tsne_map_async(codes, settings, cache, runner)
    if previous_tsne and previous_tsne != key:
        runner.cancel(previous_tsne)
    if lmap is not None:
        return MapView(lmap, key)
    failed = job is not None and job.state == "error"
    return MapView(fit_map(codes, "pca"), key, waiting=not failed, error=job.error if failed else None)


def settle_state(state: MutableMapping[str, Any], model_key: str, methods: list[str], n_min: int, n_max: int) -> None:
    """Make the Latent map's saved session values valid for the model ``model_key``.

    Values survive page and model changes. A new model starts from its own defaults (``methods[0]``:
    raw codes for a 2-D latent, else PCA, never an unasked-for t-SNE) and no picked image; other
    values are kept while valid (``map_n`` within [n_min, n_max], ``map_pick`` below n_max).
    """
    if state.get("map_model") != model_key:
        state["map_model"] = model_key
        state["map_method"] = methods[0]
        state["map_pick"] = None
    if state.get("map_method") not in methods:
        state["map_method"] = methods[0]
    if "map_n" in state and not n_min <= state["map_n"] <= n_max:
        del state["map_n"]
    pick = state.get("map_pick")
    if pick is not None and not 0 <= pick < n_max:
        state["map_pick"] = None


def neighbour_list(codes: np.ndarray | Tensor, i: int, k: int) -> list[tuple[int, float]]:
    """The k codes nearest to codes[i] (N, D), itself excluded: (index, Euclidean distance), nearest first."""
    x = torch.from_numpy(_as_array(codes))
    dist, idx = nearest(x, x[i : i + 1], k + 1)
    return [(int(j), float(d)) for j, d in zip(idx[0], dist[0]) if int(j) != i][:k]


# --------------------------------------------------------------------------- uploads


@dataclass
class Uploads:
    """Uploaded images that made it (``names``, ``images`` (M, C, H, W), ``codes`` (M, D)) and the ones
    that did not (``errors``: (file name, why))."""

    names: list[str]
    images: Tensor
    codes: Tensor
    errors: list[tuple[str, str]]


@torch.no_grad()
def encode_uploads(
    files: Iterable[tuple[str, bytes]],
    model: Any,
    style: str = "plain",
    dark_background: bool = True,
) -> Uploads:
    """Preprocess each (name, bytes) for the model and encode it to its posterior mean mu(x)."""
    names, images, errors = [], [], []
    shape = tuple(model.config.image_shape)
    for name, data in files:
        try:
            images.append(preprocess(data, shape, style=style, dark_background=dark_background).tensor)
            names.append(name)
        except ImageError as e:
            errors.append((name, str(e)))
        except Exception as e:  # anything else a strange file provokes is still one message, not a crash
            errors.append((name, f"cannot be used ({type(e).__name__}: {e})"))
    if not images:
        return Uploads([], torch.zeros(0, *shape), torch.zeros(0, model.latent_dim), errors)
    x = torch.stack(images)
    model.eval()
    mu = model.encode(x.to(model.device)).mean.cpu()
    return Uploads(names, x, mu, errors)


# --------------------------------------------------------------------------- manifold grid


def grid_square(extent: tuple[float, float] = GRID_EXTENT) -> tuple[float, float]:
    """The manifold grid's [lo, hi] in each coordinate of z: the N(0, 1) quantiles at ``extent``."""
    lo, hi = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(extent, dtype=torch.float64)).tolist()
    return float(lo), float(hi)


def manifold_image(model: Any, n: int, extent: tuple[float, float] = GRID_EXTENT, batch_size: int = 1024) -> Tensor:
    """The decoded n x n manifold of a 2-D latent on the Gaussian inverse-CDF grid between the
    quantiles ``extent``, tiled: (C, H*n, W*n)."""
    if model.latent_dim != 2:
        raise ValueError(f"the manifold grid needs a 2-D latent, this one has {model.latent_dim} dimensions")
    images = decode_batches(model, manifold_grid(n, *extent), batch_size)
    return tile(images, nrow=n, padding=0)
