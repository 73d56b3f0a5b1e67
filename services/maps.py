"""2-D maps of latent codes: fit (raw, PCA, t-SNE), place new codes, cache t-SNE, run it in the background.

Pure NumPy / PyTorch / scikit-learn (and plotly for the figure); the Latent map page calls these.

- ``fit_map(codes, method)`` -> ``LatentMap`` with the (N, 2) positions; ``LatentMap.place(new)`` puts new
  codes on that map: PCA transforms them, raw takes their first two dimensions, t-SNE (which has no
  out-of-sample map) puts each at the mean position of its k nearest map codes in latent space.
- ``DiskCache`` stores t-SNE results as ``<key>.npy`` with atomic writes; ``tsne_key`` names a result by
  a hash of the codes themselves and the settings, so a changed checkpoint never reads a stale map.
- ``Runner`` computes in worker threads with progress polling; ``tsne_map_async`` ties the three together.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .checkpoint import atomic_write
from .explore import nearest
from .images import ImageError, preprocess
from .registry import REPO_ROOT

METHODS = ("raw", "pca", "tsne")
METHOD_NAMES = {"raw": "raw (z₁, z₂)", "pca": "PCA", "tsne": "t-SNE"}
MAX_POINTS = 10_000

Progress = Callable[[float, str], None]


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
    return ["raw", "pca", "tsne"] if latent_dim <= 2 else ["pca", "tsne"]


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
    """Barnes-Hut t-SNE, tuned for speed (van der Maaten 2014; Kobak & Berens 2019; Belkina et al. 2019).

    PCA to at most ``pca_dims`` first, PCA initialisation, ``exploration_iter`` early-exaggeration
    iterations out of ``max_iter`` (scikit-learn's defaults: 250 of 1000, random init), the learning
    rate N / (4 * 12) and a coarser Barnes-Hut ``angle`` (0.5 by default). ``threads`` caps the OpenMP
    threads of the gradient (None: half the cores, at least one): on a busy machine OpenMP threads that
    compete for cores make t-SNE many times slower, not faster.
    """

    perplexity: float = 30.0
    max_iter: int = 300
    exploration_iter: int = 100
    angle: float = 0.7
    pca_dims: int = 50
    seed: int = 0
    threads: int | None = None

    def tag(self) -> str:
        return (
            f"p{self.perplexity:g}-it{self.max_iter}-ex{self.exploration_iter}-a{self.angle:g}"
            f"-pca{self.pca_dims}-s{self.seed}"
        )


FAST_TSNE = TsneSettings()


def tsne_threads(settings: TsneSettings = FAST_TSNE) -> int:
    """OpenMP threads for t-SNE's gradient: ``settings.threads``, else half the cores (at least one)."""
    return settings.threads or max(1, (os.cpu_count() or 2) // 2)


_LOCAL = threading.local()  # per-thread iteration callback for the progress hook below


def _install_progress_hook() -> bool:
    """Count scikit-learn's Barnes-Hut gradient evaluations (one per t-SNE iteration).

    scikit-learn has no progress callback, so we wrap its module-level objective once; the wrapper
    calls the *current thread's* callback (if any) and is otherwise transparent. Best effort: if
    scikit-learn's internals change, t-SNE still runs, only without iteration progress.
    """
    try:
        from sklearn.manifold import _t_sne
    except ImportError:  # pragma: no cover
        return False
    fn = getattr(_t_sne, "_kl_divergence_bh", None)
    if fn is None:  # pragma: no cover
        return False
    if getattr(fn, "_vae_progress_hook", False):
        return True

    def hooked(*args: Any, **kwargs: Any) -> Any:
        cb = getattr(_LOCAL, "on_iteration", None)
        if cb is not None:
            cb()
        return fn(*args, **kwargs)

    hooked._vae_progress_hook = True  # type: ignore[attr-defined]
    _t_sne._kl_divergence_bh = hooked
    return True


def tsne_embedding(
    codes: np.ndarray | Tensor, settings: TsneSettings = FAST_TSNE, progress: Progress | None = None
) -> np.ndarray:
    """t-SNE of codes (N, D) -> (N, 2) float32. ``progress(fraction, message)`` is called as it goes;
    an exception it raises (e.g. ``Cancelled``) stops the computation."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    x = _as_array(codes)
    n = len(x)
    if n < 4:
        raise ValueError(f"t-SNE needs at least 4 points, got {n}")
    report = progress or (lambda f, m: None)
    report(0.0, "PCA")
    if x.shape[1] > settings.pca_dims:
        x = Pca.fit(x, settings.pca_dims).transform(x)
    perplexity = float(min(settings.perplexity, max(1.0, (n - 1) / 3.0)))
    exploration = min(settings.exploration_iter, settings.max_iter)

    class _Tsne(TSNE):
        _EXPLORATION_MAX_ITER = exploration

    tsne = _Tsne(
        n_components=2,
        perplexity=perplexity,
        init="pca",
        learning_rate="auto",
        max_iter=max(250, settings.max_iter),
        angle=settings.angle,
        random_state=settings.seed,
        n_jobs=tsne_threads(settings),
    )
    total = max(250, settings.max_iter)
    count = [0]

    def on_iteration() -> None:
        count[0] += 1
        report(0.05 + 0.95 * min(count[0], total) / total, f"iteration {count[0]} of {total}")

    hooked = _install_progress_hook()
    report(0.05 if hooked else 0.1, "nearest neighbours and affinities")
    _LOCAL.on_iteration = on_iteration if hooked else None
    try:
        # OpenMP's thread count is per calling thread: this limit does not touch the rest of the process.
        with threadpool_limits(limits=tsne_threads(settings), user_api="openmp"):
            y = tsne.fit_transform(x)
    finally:
        _LOCAL.on_iteration = None
    report(1.0, "done")
    return np.ascontiguousarray(y, dtype=np.float32)


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


def neighbours(reference: np.ndarray | Tensor, queries: np.ndarray | Tensor, k: int) -> np.ndarray:
    """Indices (M, k) of the k nearest reference rows (Euclidean) of each query, nearest first."""
    return nearest(torch.from_numpy(_as_array(reference)), torch.from_numpy(_as_array(queries)), k)[1].numpy()


def fit_map(
    codes: np.ndarray | Tensor,
    method: str = "pca",
    tsne: TsneSettings = FAST_TSNE,
    progress: Progress | None = None,
    k: int = 10,
) -> LatentMap:
    """Fit a 2-D map of codes (N, D) with ``raw``, ``pca`` or ``tsne``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    x = _as_array(codes)
    if method == "raw" or (method == "pca" and x.shape[1] < 2):
        return LatentMap("raw", _raw(x), x, k)
    if method == "pca":
        pca = Pca.fit(x, 2)
        return LatentMap("pca", pca.transform(x), x, k, pca)
    return LatentMap("tsne", tsne_embedding(x, tsne, progress), x, k)


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


def _sklearn_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("scikit-learn")
    except PackageNotFoundError:  # pragma: no cover
        return "?"


def tsne_key(codes: np.ndarray | Tensor, settings: TsneSettings = FAST_TSNE) -> str:
    """A cache key for the t-SNE of these exact codes with these settings (and this scikit-learn)."""
    x = _as_array(codes)
    h = hashlib.sha256()
    h.update(f"tsne|{settings.tag()}|sklearn {_sklearn_version()}|{x.shape}|".encode())
    h.update(x.tobytes())
    return f"tsne-{x.shape[0]}-{h.hexdigest()[:32]}"


# --------------------------------------------------------------------------- background runner


class Cancelled(Exception):
    """Raised inside a job's progress callback once the job was cancelled."""


@dataclass
class Job:
    """One background computation; read its fields to poll it."""

    key: str
    state: str = "queued"  # queued -> running -> done | error | cancelled
    progress: float = 0.0
    message: str = "waiting for another computation to finish"
    result: Any = None
    error: str | None = None
    created: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        return self.state in ("done", "error", "cancelled")

    @property
    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.monotonic()) - self.started

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (tests, CLIs); True if it did within ``timeout``."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.done


class Runner:
    """Runs ``fn(progress)`` in daemon threads, at most ``workers`` at a time, one job per key.

    ``progress(fraction, message)`` updates the job and raises ``Cancelled`` once it was cancelled.
    Finished jobs are kept (the ``keep`` newest) so that every session polling a key sees its result.
    """

    def __init__(self, workers: int = 1, keep: int = 8) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(workers)
        self._keep = keep

    def get(self, key: str) -> Job | None:
        with self._lock:
            return self._jobs.get(key)

    def submit(self, key: str, fn: Callable[[Progress], Any]) -> Job:
        """Start ``fn`` under ``key`` unless a job for that key is queued, running or done."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.state in ("queued", "running", "done"):
                return job
            job = Job(key)
            self._jobs[key] = job
            self._prune()
            job._thread = threading.Thread(target=self._run, args=(job, fn), name=f"map-{key[:24]}", daemon=True)
            job._thread.start()
            return job

    def cancel(self, key: str) -> None:
        job = self.get(key)
        if job is not None and not job.done:
            job.cancel()

    def forget(self, key: str) -> None:
        """Drop a finished job (so that ``submit`` starts it afresh)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.done:
                del self._jobs[key]

    def _prune(self) -> None:
        done = sorted((j for j in self._jobs.values() if j.done), key=lambda j: j.created)
        for j in done[: max(0, len(done) - self._keep)]:
            del self._jobs[j.key]

    def _run(self, job: Job, fn: Callable[[Progress], Any]) -> None:
        def progress(fraction: float, message: str) -> None:
            if job._cancel.is_set():
                raise Cancelled
            job.progress = float(min(max(fraction, 0.0), 1.0))
            job.message = message

        with self._slots:
            if job._cancel.is_set():
                job.state, job.finished = "cancelled", time.monotonic()
                return
            job.started = time.monotonic()
            job.state, job.message = "running", "starting"
            try:
                result = fn(progress)
            except Cancelled:
                job.state, job.message = "cancelled", "cancelled"
            except Exception as e:  # reported to the page through job.error
                job.error = f"{type(e).__name__}: {e}"
                job.state, job.message = "error", job.error
            else:
                job.result, job.progress = result, 1.0
                job.state, job.message = "done", "done"
            finally:
                job.finished = time.monotonic()


RUNNER = Runner()  # process-wide: every session asking for the same map shares one computation


def tsne_map_async(
    codes: np.ndarray | Tensor,
    settings: TsneSettings = FAST_TSNE,
    cache: DiskCache | None = None,
    runner: Runner | None = None,
    k: int = 10,
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
        return LatentMap("tsne", stored.astype(np.float32), x, k), None, key
    job = runner.get(key)
    if job is not None and job.state == "done":
        return job.result, job, key
    if job is not None and job.state == "error":
        return None, job, key

    def compute(progress: Progress) -> LatentMap:
        xy = tsne_embedding(x, settings, progress)
        try:
            cache.save(key, xy)
        except OSError:  # a read-only disk only costs the next visit a recomputation
            pass
        return LatentMap("tsne", xy, x, k)

    return None, runner.submit(key, compute), key


# --------------------------------------------------------------------------- uploads, selection, figure


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
    mu = model.encode(x.to(model.device))[0].cpu()
    return Uploads(names, x, mu, errors)


def selected_index(points: Sequence[Mapping[str, Any]] | None) -> int | None:
    """The test-image index of the last clicked map point (from its customdata), or None.

    Test points carry their image index as customdata; uploads carry negative numbers and are ignored.
    """
    for p in reversed(list(points or [])):
        cd = p.get("customdata") if isinstance(p, Mapping) else None
        if isinstance(cd, (list, tuple)):
            cd = cd[0] if cd else None
        try:
            i = int(cd)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if i >= 0:
            return i
    return None


def palette(n: int) -> list[str]:
    """n distinct colours: plotly's 10 qualitative ones, then the 26 of 'Alphabet', then a sampled scale."""
    from plotly import colors

    if n <= 10:
        return list(colors.qualitative.Plotly[:n])
    if n <= 26:
        return list(colors.qualitative.Alphabet[:n])
    return colors.sample_colorscale("Turbo", [i / max(1, n - 1) for i in range(n)])


def map_figure(
    xy: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    label_names: Sequence[str],
    indices: Sequence[int] | np.ndarray | None = None,
    upload_xy: np.ndarray | None = None,
    upload_names: Sequence[str] = (),
    axis_titles: tuple[str, str] = ("", ""),
    square: tuple[float, float] | None = None,
    height: int = 620,
):
    """A plotly figure: one WebGL scatter trace per label (customdata = image index), uploads as stars
    (customdata = -1 - upload number), optionally a dashed square [lo, hi]^2 (the manifold grid's extent)."""
    import plotly.graph_objects as go

    xy = np.asarray(xy, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    indices = np.arange(len(xy)) if indices is None else np.asarray(indices, dtype=np.int64)
    names = list(label_names) or ["?"]
    colours = palette(len(names))
    fig = go.Figure()
    for j, name in enumerate(names):
        sel = np.flatnonzero(labels == j)
        if len(sel) == 0:
            continue
        fig.add_trace(
            go.Scattergl(
                x=xy[sel, 0],
                y=xy[sel, 1],
                mode="markers",
                name=str(name),
                customdata=indices[sel],
                text=[str(name)] * len(sel),
                hovertemplate="%{text}<br>test image #%{customdata}<extra></extra>",
                marker={"size": 6, "color": colours[j], "opacity": 0.8},
            )
        )
    if upload_xy is not None and len(upload_xy):
        up = np.asarray(upload_xy, dtype=np.float32)
        fig.add_trace(  # WebGL too: a plain SVG trace would be drawn under the WebGL points
            go.Scattergl(
                x=up[:, 0],
                y=up[:, 1],
                mode="markers+text",
                name="your uploads",
                customdata=-1 - np.arange(len(up)),
                text=list(upload_names),
                textposition="top center",
                hovertemplate="upload: %{text}<extra></extra>",
                marker={"symbol": "star", "size": 22, "color": "gold", "line": {"color": "black", "width": 1.5}},
            )
        )
    if square is not None:
        lo, hi = square
        fig.add_shape(
            type="rect", x0=lo, y0=lo, x1=hi, y1=hi, line={"dash": "dash", "color": "grey", "width": 1.5}, layer="above"
        )
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        legend={
            "itemsizing": "constant",
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.01,
            "x": 0,
            "title": {"text": "label (click to hide):"},
        },
        xaxis_title=axis_titles[0],
        yaxis_title=axis_titles[1],
        clickmode="event+select",
        dragmode="pan",
    )
    return fig


def figure_points(spec: Mapping[str, Any] | str) -> dict[str, int]:
    """Count the points of each trace name in a figure's JSON (plain lists or plotly's typed arrays)."""
    import base64
    import json

    fig = json.loads(spec) if isinstance(spec, str) else spec
    out: dict[str, int] = {}
    for tr in fig.get("data", []):
        x = tr.get("x", [])
        if isinstance(x, Mapping) and "bdata" in x:
            n = len(np.frombuffer(base64.b64decode(x["bdata"]), dtype=np.dtype(x.get("dtype", "f8"))))
        else:
            n = len(x)
        out[str(tr.get("name", ""))] = out.get(str(tr.get("name", "")), 0) + n
    return out


def figure_xy(spec: Mapping[str, Any] | str) -> np.ndarray:
    """All (x, y) positions of a figure's JSON, trace after trace: (N, 2)."""
    import base64
    import json

    fig = json.loads(spec) if isinstance(spec, str) else spec

    def values(v: Any) -> np.ndarray:
        if isinstance(v, Mapping) and "bdata" in v:
            return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v.get("dtype", "f8"))).astype(np.float64)
        return np.asarray(v, dtype=np.float64)

    parts = [np.stack([values(t["x"]), values(t["y"])], 1) for t in fig.get("data", []) if "x" in t]
    return np.concatenate(parts) if parts else np.zeros((0, 2))


# --------------------------------------------------------------------------- manifold grid


def manifold_image(model: Any, n: int, lo: float = 0.05, hi: float = 0.95, batch_size: int = 1024) -> Tensor:
    """The decoded n x n manifold of a 2-D latent on the Gaussian inverse-CDF grid, tiled: (C, H*n, W*n)."""
    from .explore import decode_batches, manifold_grid
    from .images import tile

    if model.latent_dim != 2:
        raise ValueError(f"the manifold grid needs a 2-D latent, this one has {model.latent_dim} dimensions")
    images = decode_batches(model, manifold_grid(n, lo, hi), batch_size)
    return tile(images, nrow=n, padding=0)
