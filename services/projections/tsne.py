"""t-SNE (van der Maaten & Hinton 2008): a neighbourhood-keeping embedding, computed in the background and
cached on disk; it has no formula for new points (an upload goes to the mean position of its k nearest
codes), no inverse and no ellipses."""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from services.jobs import Report
from services.projections import NeighbourFit, Projection, as_codes
from services.projections.pca import Pca


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


def tsne_embedding(codes: np.ndarray, settings: TsneSettings = FAST_TSNE, progress: Report | None = None) -> np.ndarray:
    """t-SNE of codes (N, D) -> (N, 2) float32, the same for the same codes and settings: openTSNE's FFT
    gradient from ``settings.fft_from`` points, scikit-learn's Barnes-Hut below.
    ``progress(fraction, message)`` is called as it goes (every ``PROGRESS_EVERY`` iterations); an
    exception it raises (e.g. ``Cancelled``) stops the computation."""
    from threadpoolctl import threadpool_limits

    x = as_codes(codes)
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


def tsne_key(codes: np.ndarray, settings: TsneSettings = FAST_TSNE) -> str:
    """A cache key for the t-SNE of these exact codes with these settings, by this library and version
    (openTSNE; maps made by scikit-learn's t-SNE before are not read back)."""
    x = as_codes(codes)
    h = hashlib.sha256()
    library = f"openTSNE {_opentsne_version()}" if len(x) >= settings.fft_from else f"sklearn {_sklearn_version()}"
    h.update(f"tsne|{settings.tag()}|{library}|{x.shape}|".encode())
    h.update(x.tobytes())
    return f"tsne-{x.shape[0]}-{h.hexdigest()[:32]}"


@dataclass(frozen=True)
class Tsne(Projection):
    settings: TsneSettings = field(default=FAST_TSNE)
    k: int = 10  # latent neighbours that place a new code

    def fit(self, x: np.ndarray, progress: Report | None = None) -> NeighbourFit:
        return NeighbourFit(tsne_embedding(x, self.settings, progress), as_codes(x), self.k)

    def cache_key(self, x: np.ndarray) -> str:
        return tsne_key(x, self.settings)


PROJECTION = Tsne(
    name="tsne",
    title="t-SNE",
    axis="t-SNE",
    order=20,
    background=True,
    about=r"""**t-SNE** (van der Maaten & Hinton 2008) places points so that neighbours in $\mathbb R^{D}$ stay
neighbours: it matches $p_{ij} \propto \exp(-\lVert\mu_i - \mu_j\rVert^2 / 2\sigma_i^2)$ with a heavy-tailed
$q_{ij} \propto (1 + \lVert y_i - y_j\rVert^2)^{-1}$ by minimising $\mathrm{KL}(P\,\|\,Q)$. It keeps
**neighbourhoods, not distances**: cluster sizes and the gaps between clusters mean little. It has no formula
for new points, so an upload is placed at the mean map position of its $k = 10$ nearest test codes in latent
space; a position on it is no code (nothing is decoded), and it is no linear map, so it has no ellipses.""",
)
