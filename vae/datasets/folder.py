"""Image folders: every image under a folder, its first-level sub-folders the labels.

Images are decoded into tensors, unless the decoded images would exceed the memory budget: then the train
split streams from disk (``Dataset.train_stream``, a ``FolderImages``), and only the test split and a
preview of the train split are decoded into tensors.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterator
from pathlib import Path

import torch

from ..images import SUFFIXES, ImageError, preprocess
from .core import DataError, Dataset, DataSpec, LoadRequest, split, split_indices

IMAGE_SUFFIXES = {f".{s}" for s in SUFFIXES}

# Image folders whose decoded float32 images would take more than this stream from disk.
DEFAULT_MEMORY_BUDGET_MB = 2048.0
STREAM_TEST_MAX = 10_000  # most test images kept in memory for a streamed folder
STREAM_PREVIEW = 2_000  # train images kept in memory for a streamed folder (nearest-neighbour views)


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
    tr_x, tr_y, te_x, te_y = split(x, y, test_fraction, seed)
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
    tr, te = (idx.tolist() for idx in split_indices(len(files), test_fraction, seed))
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


def folder_problem(path: str) -> str | None:
    """Why ``path`` is no image folder to train on (``load_folder`` needs 2 images, in it or its
    sub-folders), in one sentence; None if it is one. Reads at most two image names."""
    text = path.strip()
    if not text:
        return "give the image folder's path"
    root = Path(text).expanduser()
    if not root.exists():
        return f"the image folder {root} does not exist"
    if not root.is_dir():
        return f"{root} is a file, not a folder"
    found = len(list(itertools.islice(iter_images(root), 2)))
    if found == 0:
        kinds = ", ".join(sorted(IMAGE_SUFFIXES))
        return f"the image folder {root} holds no images ({kinds}), in it or in its sub-folders"
    if found < 2:
        return f"the image folder {root} holds only one image; at least 2 are needed"
    return None


def _load(req: LoadRequest) -> Dataset:
    return load_folder(
        req.path, size=req.image_size or 32, channels=req.channels, seed=req.seed, memory_budget_mb=req.memory_budget_mb
    )


SPEC = DataSpec(
    name="folder",
    title="Image folder",
    summary="Every image under a folder (PNG, JPEG, ...); its first-level sub-folders are the labels, "
    "and a folder too big for memory streams from disk.",
    load=_load,
    order=90,
    choice="image folder",
    inputs=("folder", "image_size", "channels"),
    style="plain",
    dark_background=False,
    prefix=True,
)
