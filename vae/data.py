"""Data sets as in-memory tensors: the public face of the registry in ``vae.datasets``.

Each data set (moons, digits, MNIST, Fashion-MNIST, image folders, ...) is one module of ``vae.datasets``
with its loader and its ``DataSpec``; ``load_dataset`` and ``spec`` look names up there. This module
re-exports what callers import from ``vae.data``.

Every loader returns a ``Dataset`` whose images are float32 (N, C, H, W) in [0, 1] with a fixed train /
test split, so training indexes tensors and never runs per-sample transforms. The exception is an image
folder whose decoded images would exceed the memory budget: its train split streams from disk
(``Dataset.train_stream``, a ``FolderImages``), and only its test split and a preview of the train split
are decoded into tensors. MNIST's 10,000 test digits ship with the code (vae/assets/mnist): callers that
need no training images (the app, evaluation) get the real test set from there when MNIST's files are absent.
"""

from __future__ import annotations

from .datasets import find, names, specs
from .datasets import get as spec
from .datasets import load as load_dataset
from .datasets.core import (
    Absent,
    DataError,
    Dataset,
    DataSpec,
    LoadRequest,
    cache_dir,
    default_data_dir,
    disk_cached,
    split,
    split_indices,
)
from .datasets.digits import load_digits
from .datasets.fashion_mnist import FASHION_NAMES
from .datasets.folder import (
    DEFAULT_MEMORY_BUDGET_MB,
    IMAGE_SUFFIXES,
    STREAM_PREVIEW,
    STREAM_TEST_MAX,
    FolderImages,
    default_memory_budget_mb,
    folder_problem,
    iter_images,
    list_images,
    load_folder,
)
from .datasets.mnist import (
    IN_BOX_MNIST,
    MNIST_FILES,
    in_box_arrays,
    load_in_box_mnist,
    load_mnist,
    missing_mnist_files,
    mnist_folder,
    read_idx,
)
from .datasets.moons import (
    MOON_RADIUS,
    MOON_SHIFT,
    MOON_TILT,
    PHASE_NAMES,
    cached_moons,
    load_moons,
    make_moons,
    moon_shapes,
    phase_class,
    render_moons,
    shade_moons,
)

DATASETS = tuple(s.name for s in specs() if not s.prefix)  # the names without a path: moons, digits, ...

__all__ = [
    "DATASETS",
    "DEFAULT_MEMORY_BUDGET_MB",
    "FASHION_NAMES",
    "IMAGE_SUFFIXES",
    "IN_BOX_MNIST",
    "MNIST_FILES",
    "MOON_RADIUS",
    "MOON_SHIFT",
    "MOON_TILT",
    "PHASE_NAMES",
    "STREAM_PREVIEW",
    "STREAM_TEST_MAX",
    "Absent",
    "DataError",
    "DataSpec",
    "Dataset",
    "FolderImages",
    "LoadRequest",
    "cache_dir",
    "cached_moons",
    "default_data_dir",
    "default_memory_budget_mb",
    "disk_cached",
    "find",
    "folder_problem",
    "in_box_arrays",
    "iter_images",
    "list_images",
    "load_dataset",
    "load_digits",
    "load_folder",
    "load_in_box_mnist",
    "load_mnist",
    "load_moons",
    "make_moons",
    "missing_mnist_files",
    "mnist_folder",
    "moon_shapes",
    "names",
    "phase_class",
    "read_idx",
    "render_moons",
    "shade_moons",
    "spec",
    "specs",
    "split",
    "split_indices",
]
