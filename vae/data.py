"""Data sets as in-memory tensors: moons (built in), digits, MNIST, Fashion-MNIST, image folders.

MNIST's 10,000 test digits ship with the code (vae/assets/mnist): callers that need no training
images (the app, evaluation) get the real test set from there when MNIST's files are absent.

Every loader returns a ``Dataset`` whose images are float32 (N, C, H, W) in [0, 1] with a
fixed train / test split, so training indexes tensors and never runs per-sample transforms.
The exception is an image folder whose decoded images would exceed the memory budget: its
train split streams from disk (``Dataset.train_stream``, a ``FolderImages``), and only its
test split and a preview of the train split are decoded into tensors.
"""

from __future__ import annotations

import gzip
import hashlib
import inspect
import math
import os
import struct
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .images import SUFFIXES, ImageError, digits_frame, preprocess

PHASE_NAMES = (
    "new moon",
    "waxing crescent",
    "first quarter",
    "waxing gibbous",
    "full moon",
    "waning gibbous",
    "last quarter",
    "waning crescent",
)
DATASETS = ("moons", "digits", "mnist", "fashion-mnist")
IMAGE_SUFFIXES = {f".{s}" for s in SUFFIXES}

# Image folders whose decoded float32 images would take more than this stream from disk.
DEFAULT_MEMORY_BUDGET_MB = 2048.0
STREAM_TEST_MAX = 10_000  # most test images kept in memory for a streamed folder
STREAM_PREVIEW = 2_000  # train images kept in memory for a streamed folder (nearest-neighbour views)


class DataError(RuntimeError):
    """A data set cannot be loaded; the message says what is missing and where it belongs."""


@dataclass
class Dataset:
    """A data set split into train and test tensors.

    ``train_x``/``test_x``: (N, C, H, W) float32 in [0, 1]; ``train_y``/``test_y``: (N,) int64
    indices into ``label_names``. ``extra`` holds per-image side information (for moons the
    phase angle in radians, under ``train_phase`` / ``test_phase``).

    When ``train_stream`` is set (a large image folder), it is the full train split, read from
    disk per item, and ``train_x``/``train_y`` are only an in-memory preview of it. MNIST's test set
    shipped in vae/assets has an empty train split (``n_train`` 0): ``neighbours`` then gives its test split.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    label_names: list[str]
    style: str = "plain"  # how uploads are preprocessed for this data (see vae.images)
    dark_background: bool = True
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    # The full train split streamed from disk (a FolderImages) when it is too big for memory.
    train_stream: torch.utils.data.Dataset | None = None
    # Where the images came from when that is not the usual place (MNIST from vae/assets); "" otherwise.
    note: str = ""

    @property
    def streamed(self) -> bool:
        return self.train_stream is not None

    @property
    def n_train(self) -> int:
        """Train images: the streamed split's length, else len(train_x)."""
        return len(self.train_stream) if self.train_stream is not None else len(self.train_x)  # type: ignore[arg-type]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        x = self.train_x if len(self.train_x) or not len(self.test_x) else self.test_x
        return tuple(x.shape[1:])  # type: ignore[return-value]

    def neighbours(self) -> tuple[torch.Tensor, str]:
        """The images that nearest-image views compare against, and their split ("train" or "test"):
        the train split, or the test split when the data set comes without training images."""
        return (self.train_x, "train") if len(self.train_x) else (self.test_x, "test")

    def info(self) -> dict[str, Any]:
        """JSON-able description stored in checkpoints."""
        out: dict[str, Any] = {
            "name": self.name,
            "image_shape": list(self.image_shape),
            "label_names": list(self.label_names),
            "style": self.style,
            "dark_background": self.dark_background,
            "n_train": self.n_train,
            "n_test": len(self.test_x),
        }
        if self.streamed:
            out["streamed"] = True
        return out


# --------------------------------------------------------------------------- moons


Array = np.ndarray | torch.Tensor  # the moon renderer runs on either

# The jitter's ranges: radius and centre shift as shares of the image side, tilt in radians.
MOON_RADIUS = (0.30, 0.42)
MOON_SHIFT = 0.08
MOON_TILT = 0.5


def phase_class(angle: np.ndarray | float) -> np.ndarray:
    """Phase angle in radians (0 new, pi/2 first quarter, pi full) -> index into PHASE_NAMES."""
    a = np.mod(np.asarray(angle, dtype=np.float64), 2 * math.pi)
    return (np.floor(a / (math.pi / 4) + 0.5).astype(np.int64)) % 8


def moon_shapes(angle: Array, radius: Array, cx: Array, cy: Array, tilt: Array, size: int = 28) -> tuple[Array, ...]:
    """The clean moon each geometry gives: phase angle, radius, centre (cx, cy) in pixels and terminator
    tilt, each (N,) -> the disk's coverage, the lit part's coverage, and the disk coordinates dx, dy,
    each broadcastable to (N, size, size). NumPy arrays in, NumPy out; torch tensors in, torch out
    (differentiable: how services.moons fits a moon to a picture).

    With (u, v) disk coordinates and u along the sun, a point is lit when s*u >= cos(angle) * sqrt(1 - v^2),
    s = +1 waxing (lit on the right), -1 waning: the terminator is an ellipse of half-width |cos(angle)|.
    """
    xp = torch if isinstance(angle, torch.Tensor) else np
    floor = 1e-12 if xp is torch else 0.0  # keeps sqrt's gradient finite at 0
    angle = xp.remainder(angle, 2 * math.pi)
    grid = (xp.arange(size) + 0.5)[None, None, :]
    dx = (grid - cx[:, None, None]) / radius[:, None, None]  # (N, 1, S)
    dy = (grid.reshape(1, size, 1) - cy[:, None, None]) / radius[:, None, None]  # (N, S, 1)
    ct, st = xp.cos(tilt)[:, None, None], xp.sin(tilt)[:, None, None]
    u = ct * dx + st * dy
    v = -st * dx + ct * dy
    px = 1.0 / radius[:, None, None]  # one pixel in disk units, for anti-aliasing
    disk = xp.clip((1.0 - xp.sqrt(u**2 + v**2 + floor)) / px + 0.5, 0, 1)
    s = xp.where(angle < math.pi, 1.0, -1.0)[:, None, None]
    edge = xp.cos(angle)[:, None, None] * xp.sqrt(xp.clip(1 - v**2, floor, 1))
    lit = xp.clip((s * u - edge) / px, 0, 1)  # no half-pixel offset: a new moon stays dark
    return disk, lit, dx, dy


def shade_moons(disk: Array, lit: Array, surface: Array | float = 1.0, gain: Array | float = 0.9) -> Array:
    """Brightness of a moon from :func:`moon_shapes`: the lit part at ``gain`` times its ``surface``
    (craters), faint earthshine (0.06) on the dark side."""
    return disk * (gain * lit * surface + 0.06)


def render_moons(
    angle: np.ndarray,
    size: int = 28,
    rng: np.random.Generator | None = None,
    jitter: bool = True,
) -> np.ndarray:
    """Render moon images for phase angles (N,) -> (N, size, size) float32 in [0, 1].

    ``jitter`` adds random size, position, terminator tilt (see :func:`moon_shapes`), crater texture
    and noise.
    """
    rng = rng or np.random.default_rng(0)
    n = len(angle)
    if jitter:
        radius = rng.uniform(*MOON_RADIUS, n) * size
        cx = size / 2 + rng.uniform(-MOON_SHIFT, MOON_SHIFT, n) * size
        cy = size / 2 + rng.uniform(-MOON_SHIFT, MOON_SHIFT, n) * size
        tilt = rng.uniform(-MOON_TILT, MOON_TILT, n)
    else:
        radius = np.full(n, 0.36 * size)
        cx = cy = np.full(n, size / 2)
        tilt = np.zeros(n)
    disk, lit, dx, dy = moon_shapes(angle, radius, cx, cy, tilt, size)
    surface = np.ones_like(disk * lit)
    if jitter:
        # A few dark maria/craters, fixed on the moon's face (so they move with it).
        for _ in range(4):
            mx, my = rng.uniform(-0.6, 0.6, (2, n, 1, 1))
            mr = rng.uniform(0.12, 0.3, (n, 1, 1))
            surface -= 0.25 * np.exp(-((dx - mx) ** 2 + (dy - my) ** 2) / (2 * mr**2))
    img = shade_moons(disk, lit, surface)
    if jitter:
        img = img + rng.normal(0, 0.02, img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


def make_moons(n: int, size: int = 28, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n moon images (n, 1, size, size) and their phase angles (n,) in radians.

    A quarter of the images sit exactly on the eight named phases (true full moons, true half
    moons, ...); the rest are spread within +-22.5 degrees of them.
    """
    rng = np.random.default_rng(seed)
    k = rng.integers(0, 8, n)
    offset = rng.uniform(-math.pi / 8, math.pi / 8, n) * (rng.random(n) >= 0.25)
    angle = np.mod(k * (math.pi / 4) + offset, 2 * math.pi)
    images = render_moons(angle, size=size, rng=rng)
    return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(angle.astype(np.float32))


MOONS_CACHE_MIN = 2000  # smaller sets are drawn faster than a file is read


def cache_dir() -> Path:
    """$VAE_CACHE_DIR, else .cache/ under the repository root (git-ignored)."""
    return Path(os.environ.get("VAE_CACHE_DIR") or Path(__file__).resolve().parents[1] / ".cache")


def disk_cached(name: str, key: str, make: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Arrays made by ``make()``, kept in .cache/NAME-<hash of key>.npz: built data sets are read back in
    milliseconds after the first server start. ``key`` must name everything the arrays depend on (the
    arguments and the source of the code that makes them). A missing or broken file is made again; a
    read-only disk only costs the time."""
    path = cache_dir() / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    try:
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError):  # absent, or cut short by a crash
        pass
    arrays = make()
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)  # readers see no file or the whole one
    except OSError:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return arrays


def cached_moons(n: int, size: int = 28, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`make_moons`, kept on disk: drawing 7,000 moons takes ~2 s, reading them back ~30 ms
    (the app draws them on the first page that needs data after every server start)."""
    if n < MOONS_CACHE_MIN:
        return make_moons(n, size=size, seed=seed)

    def make() -> dict[str, np.ndarray]:
        x, angle = make_moons(n, size=size, seed=seed)
        return {"x": x.numpy(), "angle": angle.numpy()}

    code = inspect.getsource(make_moons) + inspect.getsource(render_moons) + inspect.getsource(moon_shapes)
    code += inspect.getsource(shade_moons) + np.__version__
    arrays = disk_cached("moons", f"{n}:{size}:{seed}:{code}", make)
    return torch.from_numpy(arrays["x"]), torch.from_numpy(arrays["angle"])


def load_moons(n_train: int = 6000, n_test: int = 1000, size: int = 28, seed: int = 0) -> Dataset:
    x, angle = cached_moons(n_train + n_test, size=size, seed=seed)
    y = torch.from_numpy(phase_class(angle.numpy()))
    return Dataset(
        name="moons",
        train_x=x[:n_train],
        train_y=y[:n_train],
        test_x=x[n_train:],
        test_y=y[n_train:],
        label_names=list(PHASE_NAMES),
        style="plain",
        extra={"train_phase": angle[:n_train], "test_phase": angle[n_train:]},
    )


# --------------------------------------------------------------------------- digits, MNIST


def _split_indices(n: int, test_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded train / test split of range(n): (train indices, test indices), at least one test item."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = max(1, round(n * test_fraction))
    return perm[n_test:], perm[:n_test]


def _split(x: torch.Tensor, y: torch.Tensor, test_fraction: float, seed: int) -> tuple[torch.Tensor, ...]:
    tr, te = _split_indices(len(x), test_fraction, seed)
    return x[tr], y[tr], x[te], y[te]


def _digits(size: int) -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    return {"x": digits_frame(x, size).contiguous().numpy(), "y": bunch.target.astype(np.int64)}


def load_digits(size: int = 28, seed: int = 0) -> Dataset:
    """scikit-learn's 1,797 handwritten 8x8 digits, upscaled to size x size, 80/20 split (kept on disk:
    importing scikit-learn alone takes about a second)."""
    code = inspect.getsource(_digits) + inspect.getsource(digits_frame)
    arrays = disk_cached("digits", f"{size}:{code}", lambda: _digits(size))
    x, y = torch.from_numpy(arrays["x"]), torch.from_numpy(arrays["y"])
    tr_x, tr_y, te_x, te_y = _split(x, y, 0.2, seed)
    return Dataset("digits", tr_x, tr_y, te_x, te_y, [str(i) for i in range(10)], style="digit-8x8")


MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MNIST_CLASSES = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}  # torchvision's class: its sub-folder
FASHION_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def default_data_dir() -> str:
    return os.environ.get("VAE_DATA_DIR", "./data")


def mnist_folder(name: str, data_dir: str | None = None) -> Path:
    """Where torchvision keeps ``name``'s (mnist or fashion-mnist) four files under ``data_dir``."""
    return Path(data_dir or default_data_dir()) / MNIST_CLASSES[name] / "raw"


def missing_mnist_files(name: str, data_dir: str | None = None) -> list[str]:
    """Which of MNIST_FILES are in ``mnist_folder`` neither as they are nor gzipped (torchvision
    unpacks a .gz it finds without downloading it)."""
    folder = mnist_folder(name, data_dir)
    return [f for f in MNIST_FILES if not ((folder / f).is_file() or (folder / f"{f}.gz").is_file())]


def read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes (MNIST's format), or PATH.gz if only that exists: uint8, shaped as
    its header says."""
    gz = path.with_name(path.name + ".gz")
    raw = path.read_bytes() if path.is_file() else gzip.decompress(gz.read_bytes())
    if len(raw) < 4 or raw[:3] != b"\0\0\x08":
        raise DataError(f"{path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    if len(raw) != 4 + 4 * ndim + math.prod(dims):
        raise DataError(f"{path} does not hold the {'x'.join(map(str, dims))} values its header announces")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


IN_BOX_MNIST = Path(__file__).resolve().parent / "assets" / "mnist" / "mnist-test.npz"


def in_box_arrays() -> tuple[np.ndarray, np.ndarray]:
    """MNIST's test set as shipped in vae/assets/mnist: images (10000, 28, 28) uint8 and labels (10000,)
    uint8, unchanged from t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte."""
    try:
        with np.load(IN_BOX_MNIST) as f:
            return f["x"], f["y"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise DataError(f"MNIST's test set shipped in {IN_BOX_MNIST} cannot be read ({e})") from e


def load_in_box_mnist(folder: Path | None = None) -> Dataset:
    """MNIST's real test set from vae/assets/mnist, with an empty train split: the repository ships no
    training images, and nothing is to be trained on test images. ``folder`` (where the full files were
    looked for) goes into the data set's note."""
    x, y = in_box_arrays()
    test_x = torch.from_numpy(x).unsqueeze(1).float().div_(255.0)
    where = f" (not found in {folder})" if folder is not None else ""
    note = (
        f"MNIST's {len(x):,} test digits come from the copy shipped in vae/assets/mnist; "
        f"its training digits are not on this machine{where}."
    )
    return Dataset(
        "mnist",
        torch.zeros((0, *test_x.shape[1:])),
        torch.zeros(0, dtype=torch.int64),
        test_x,
        torch.from_numpy(y).long(),
        [str(i) for i in range(10)],
        style="digit",
        note=note,
    )


def load_mnist(
    name: str = "mnist", data_dir: str | None = None, download: bool = True, need_train: bool = True
) -> Dataset:
    """MNIST or Fashion-MNIST from ``data_dir`` (torchvision's layout), downloaded by torchvision if allowed
    and missing. Files that are there are read directly: importing torchvision alone takes ~0.8 s.

    Without MNIST's files and with ``need_train`` False, MNIST's test set comes from vae/assets/mnist
    (``load_in_box_mnist``) and nothing is downloaded; Fashion-MNIST has no such copy."""
    folder = mnist_folder(name, data_dir)
    labels = [str(i) for i in range(10)] if name == "mnist" else FASHION_NAMES
    style = "digit" if name == "mnist" else "centered"
    if not missing_mnist_files(name, data_dir):
        tr_x, tr_y, te_x, te_y = (torch.from_numpy(np.array(read_idx(folder / f))) for f in MNIST_FILES)
        x = [t.unsqueeze(1).float().div_(255.0) for t in (tr_x, te_x)]
        return Dataset(name, x[0], tr_y.long(), x[1], te_y.long(), labels, style=style)
    if name == "mnist" and not need_train:
        return load_in_box_mnist(folder)
    if not download:
        raise DataError(
            f"{name} is not in {folder}. Put the four files {', '.join(MNIST_FILES)} (uncompressed, or .gz) "
            f"in {folder}, or pass --data-dir / set VAE_DATA_DIR to the folder that holds "
            f"{MNIST_CLASSES[name]}/raw."
        )
    from torchvision import datasets

    root = Path(data_dir or default_data_dir())
    cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
    splits = []
    for train in (True, False):
        try:
            ds = cls(root=str(root), train=train, download=False)
        except RuntimeError:
            if not download:
                ds = None
            else:
                try:
                    ds = cls(root=str(root), train=train, download=True)
                except Exception:
                    ds = None
        if ds is None:
            files = ", ".join(MNIST_FILES)
            raise DataError(
                f"{name} is not in {folder} and could not be downloaded. Put the four files "
                f"{files} (uncompressed, or .gz) in {folder}, or pass --data-dir / set VAE_DATA_DIR "
                f"to the folder that holds {cls.__name__}/raw."
            )
        splits.append((ds.data.unsqueeze(1).float().div_(255.0), ds.targets.long()))
    (tr_x, tr_y), (te_x, te_y) = splits
    return Dataset(name, tr_x, tr_y, te_x, te_y, labels, style=style)


# --------------------------------------------------------------------------- image folders


def default_memory_budget_mb() -> float:
    """The memory budget for decoded image folders: ``VAE_MEMORY_BUDGET_MB`` or the default."""
    value = os.environ.get("VAE_MEMORY_BUDGET_MB", "").strip()
    if not value:
        return DEFAULT_MEMORY_BUDGET_MB
    try:
        budget = float(value)
    except ValueError:
        budget = math.nan
    if not math.isfinite(budget) or budget < 0:
        raise DataError(f"VAE_MEMORY_BUDGET_MB={value!r} is not a number of megabytes (0 or more)")
    return budget


class FolderImages(torch.utils.data.Dataset):
    """Image files decoded one at a time: item i -> (x (C, H, W) float32, ok, i).

    A file that cannot be decoded gives zeros and ``ok`` False instead of raising, so one broken
    file does not kill a DataLoader worker; ``path(i)`` names it. Holds only strings, ints and
    an int64 label tensor, so it pickles cheaply into workers.
    """

    def __init__(self, files: list[str | Path], labels: list[int], image_shape: tuple[int, int, int]) -> None:
        if len(files) != len(labels):
            raise ValueError(f"{len(files)} files but {len(labels)} labels")
        self.files = [str(f) for f in files]
        self.labels = torch.tensor(list(labels), dtype=torch.int64)  # (N,)
        self.image_shape = tuple(int(d) for d in image_shape)

    def __len__(self) -> int:
        return len(self.files)

    def path(self, i: int) -> str:
        return self.files[i]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, bool, int]:
        try:
            x = preprocess(self.files[i], self.image_shape, style="plain", dark_background=False).tensor
        except (ImageError, OSError):
            return torch.zeros(self.image_shape), False, i
        return x, True, i


def iter_images(root: Path) -> Iterator[Path]:
    """The image files under ``root``, in no particular order: what an image folder trains on."""
    return (p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def list_images(root: Path) -> tuple[list[Path], list[int], list[str]]:
    """Image files under ``root`` (sorted), their label indices and the label names."""
    files = sorted(iter_images(root))
    label_names = sorted({p.relative_to(root).parts[0] for p in files if len(p.relative_to(root).parts) > 1})
    if any(len(p.relative_to(root).parts) == 1 for p in files):
        label_names.append("(unlabelled)")
    index = {name: i for i, name in enumerate(label_names)}
    labels = []
    for p in files:
        parts = p.relative_to(root).parts
        labels.append(index[parts[0] if len(parts) > 1 else "(unlabelled)"])
    return files, labels, label_names


def _decode(
    root: Path, files: list[Path], labels: list[int], shape: tuple[int, int, int], skipped: list[str]
) -> tuple[torch.Tensor, torch.Tensor, list[bool]]:
    """Decode files into (N, C, H, W), their labels (N,) and which files decoded (one bool a
    file); failures are appended to ``skipped``."""
    xs, ys, ok = [], [], []
    for p, y in zip(files, labels):
        try:
            xs.append(preprocess(p, shape, style="plain", dark_background=False).tensor)
        except (ImageError, OSError) as e:
            skipped.append(f"{p.relative_to(root)}: {e}")
            ok.append(False)
            continue
        ys.append(y)
        ok.append(True)
    x = torch.stack(xs) if xs else torch.zeros((0, *shape))
    return x, torch.tensor(ys, dtype=torch.int64), ok


def load_folder(
    path: str | Path,
    size: int = 32,
    channels: int = 1,
    seed: int = 0,
    test_fraction: float = 0.1,
    memory_budget_mb: float | None = None,
) -> Dataset:
    """Every image under ``path``; first-level sub-folders are the labels. Unreadable files
    are skipped and listed in ``Dataset.skipped``. Images keep their framing (style plain).

    When the decoded images (N * C * size * size float32) would exceed ``memory_budget_mb``
    (default: ``default_memory_budget_mb()``), the file list is split instead: the train split
    streams from disk as ``train_stream``; the test split (at most STREAM_TEST_MAX files) and
    the first STREAM_PREVIEW train files are decoded into ``test_x`` and ``train_x``.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist or is not a folder")
    budget = default_memory_budget_mb() if memory_budget_mb is None else float(memory_budget_mb)
    if not math.isfinite(budget) or budget < 0:
        raise DataError(f"memory budget {memory_budget_mb!r} MB is not a number of megabytes (0 or more)")
    files, labels, label_names = list_images(root)
    shape = (channels, size, size)
    if files and len(files) * channels * size * size * 4 > budget * 2**20:
        return _stream_folder(root, files, labels, label_names, shape, seed, test_fraction)
    skipped: list[str] = []
    x, y, _ = _decode(root, files, labels, shape, skipped)
    if len(x) < 2:
        raise DataError(
            f"image folder {root} has {len(x)} usable image(s); at least 2 are needed"
            + (f" ({len(skipped)} skipped)" if skipped else "")
        )
    tr_x, tr_y, te_x, te_y = _split(x, y, test_fraction, seed)
    return Dataset(
        f"folder:{root}", tr_x, tr_y, te_x, te_y, label_names, style="plain", dark_background=False, skipped=skipped
    )


def _stream_folder(
    root: Path,
    files: list[Path],
    labels: list[int],
    label_names: list[str],
    shape: tuple[int, int, int],
    seed: int,
    test_fraction: float,
) -> Dataset:
    """A folder too big for memory: split the file list as ``_split`` splits tensors."""
    tr, te = (idx.tolist() for idx in _split_indices(len(files), test_fraction, seed))
    skipped: list[str] = []
    # Test files past STREAM_TEST_MAX are used for neither training nor testing.
    te = te[:STREAM_TEST_MAX]
    te_x, te_y, _ = _decode(root, [files[i] for i in te], [labels[i] for i in te], shape, skipped)
    pv = tr[:STREAM_PREVIEW]
    tr_x, tr_y, ok = _decode(root, [files[i] for i in pv], [labels[i] for i in pv], shape, skipped)
    # Files the preview found broken (and reported) stay out of the stream.
    tr = [i for i, good in zip(pv, ok) if good] + tr[len(pv) :]
    usable = len(te_x) + len(tr_x)
    if usable < 2:
        raise DataError(
            f"image folder {root} has {usable} usable image(s) among the {len(te) + len(pv)} decoded "
            f"of {len(files)}; at least 2 are needed" + (f" ({len(skipped)} skipped)" if skipped else "")
        )
    stream = FolderImages([files[i] for i in tr], [labels[i] for i in tr], shape)
    return Dataset(
        f"folder:{root}",
        tr_x,
        tr_y,
        te_x,
        te_y,
        label_names,
        style="plain",
        dark_background=False,
        skipped=skipped,
        train_stream=stream,
    )


def load_dataset(
    name: str,
    data_dir: str | None = None,
    image_size: int | None = None,
    channels: int = 1,
    seed: int = 0,
    download: bool = True,
    memory_budget_mb: float | None = None,
    need_train: bool = True,
) -> Dataset:
    """Load a data set by its CLI name: moons, digits, mnist, fashion-mnist or folder:PATH.

    ``download`` lets torchvision fetch MNIST / Fashion-MNIST when their files are missing.
    ``need_train`` False (evaluation, the app) takes MNIST's test set shipped in vae/assets/mnist when
    MNIST's files are missing: a data set with no training images (see ``load_mnist``).
    ``memory_budget_mb`` applies to folders only (see ``load_folder``); others ignore it.
    """
    if name == "moons":
        return load_moons(size=image_size or 28, seed=seed)
    if name == "digits":
        return load_digits(size=image_size or 28, seed=seed)
    if name in ("mnist", "fashion-mnist"):
        if image_size not in (None, 28):
            raise DataError(f"{name} images are 28x28; --image-size {image_size} is not supported")
        return load_mnist(name, data_dir, download=download, need_train=need_train)
    if name.startswith("folder:"):
        return load_folder(
            name[len("folder:") :],
            size=image_size or 32,
            channels=channels,
            seed=seed,
            memory_budget_mb=memory_budget_mb,
        )
    raise DataError(f"unknown data set {name!r}: use one of {', '.join(DATASETS)} or folder:PATH")
