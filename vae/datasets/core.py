"""What every data set shares: the ``Dataset`` it loads into, the ``DataSpec`` that describes it in the
registry, the request a loader gets, and the disk cache and split rules loaders use.

Pure PyTorch / NumPy: no data set lives here (see the other modules of ``vae.datasets``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..images import STYLES
from ..meta import REPO_ROOT, atomic_write

FORM_INPUTS = ("folder", "image_size", "channels", "data_dir")  # the Train form's data inputs


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


@dataclass(frozen=True)
class LoadRequest:
    """What a loader is asked for, beyond the data set's name. ``path`` is what follows ``NAME:`` for a
    data set named by a path (an image folder); ``need_train`` False accepts a data set without training
    images (the spec's ``fallback``); ``download`` lets a loader fetch files that are absent."""

    path: str = ""
    data_dir: str | None = None
    image_size: int | None = None
    channels: int = 1
    seed: int = 0
    download: bool = True
    memory_budget_mb: float | None = None
    need_train: bool = True


@dataclass(frozen=True)
class Absent:
    """Why a data set cannot be loaded here: ``what`` in a few words ("files not found"), ``detail`` the
    rest of the sentence (where they were looked for, what is missing)."""

    what: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.what} {self.detail}".strip()


@dataclass(frozen=True)
class DataSpec:
    """One data set as the registry knows it: one of these per module of ``vae.datasets``.

    ``load(request) -> Dataset`` loads it; ``inputs`` are the Train form's inputs it needs (of
    FORM_INPUTS); ``style`` / ``dark_background`` how uploads are preprocessed for a model of it (a
    ``vae.images`` style); ``label_names`` its classes (empty: read from the data, as an image folder's
    sub-folders); ``sizes`` the image sides it loads at (None: any); ``folder`` where its files go under
    the data folder; ``prefix`` True when it is named ``NAME:PATH``; ``check(data_dir)`` says why it cannot
    load here (None: it can); ``fallback(request)`` loads it without training images when its files are
    absent (MNIST's test set shipped in vae/assets); ``fit(frames (N, C, H, W))`` fits the data's own
    renderer to pictures (moons); ``example_pair(data)`` the two test images the documents' examples
    interpolate between.
    """

    name: str
    title: str
    summary: str
    load: Callable[[LoadRequest], Dataset]
    order: int = 100  # place among the CLI's and the Train form's choices
    choice: str = ""  # the Train form's name for it when not ``name`` ("image folder")
    inputs: tuple[str, ...] = ()
    style: str = "plain"
    dark_background: bool = True
    label_names: tuple[str, ...] = ()
    sizes: tuple[int, ...] | None = None
    folder: str = ""
    prefix: bool = False
    check: Callable[[str | None], Absent | None] | None = None
    fallback: Callable[[LoadRequest], Dataset] | None = None
    fit: Callable[[torch.Tensor], Any] | None = None
    example_pair: Callable[[Dataset], tuple[int, int]] | None = None

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"data set {self.name}: style must be one of {STYLES}, got {self.style!r}")
        unknown = set(self.inputs) - set(FORM_INPUTS)
        if unknown:
            raise ValueError(f"data set {self.name}: unknown inputs {sorted(unknown)} (use {FORM_INPUTS})")

    @property
    def form_name(self) -> str:
        """The Train form's option for it."""
        return self.choice or self.name

    @property
    def cli(self) -> str:
        """How the command line names it: ``moons``, or ``folder:PATH``."""
        return f"{self.name}:PATH" if self.prefix else self.name

    def absent(self, data_dir: str | None = None) -> Absent | None:
        """Why it cannot be loaded from ``data_dir`` (None: the default data folder) here; None if it can."""
        return self.check(data_dir) if self.check is not None else None


# --------------------------------------------------------------------------- shared rules


def default_data_dir() -> str:
    """The data folder: $VAE_DATA_DIR, else ./data."""
    return os.environ.get("VAE_DATA_DIR", "./data")


def cache_dir() -> Path:
    """$VAE_CACHE_DIR, else .cache/ under the repository root (git-ignored): the one cache folder."""
    return Path(os.environ.get("VAE_CACHE_DIR") or REPO_ROOT / ".cache")


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
    try:
        atomic_write(path, lambda f: np.savez(f, **arrays))
    except OSError:
        pass
    return arrays


def split_indices(n: int, test_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded train / test split of range(n): (train indices, test indices), at least one test item."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = max(1, round(n * test_fraction))
    return perm[n_test:], perm[:n_test]


def split(x: torch.Tensor, y: torch.Tensor, test_fraction: float, seed: int) -> tuple[torch.Tensor, ...]:
    """``split_indices`` applied to images (N, ...) and labels (N,): train x, train y, test x, test y."""
    tr, te = split_indices(len(x), test_fraction, seed)
    return x[tr], y[tr], x[te], y[te]
