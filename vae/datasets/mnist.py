"""MNIST: 70,000 handwritten digits, 28x28, in torchvision's layout under the data folder (MNIST/raw).

The loaders here read any data set in MNIST's IDX format (Fashion-MNIST's module is its ``SPEC`` alone:
see ``idx_spec``). MNIST's 10,000 test digits also ship with the code (vae/assets/mnist): callers that
need no training images (the app, evaluation) get the real test set from there when the files are absent.
"""

from __future__ import annotations

import gzip
import math
import struct
import zipfile
from pathlib import Path

import numpy as np
import torch

from .core import Absent, DataError, Dataset, DataSpec, LoadRequest, default_data_dir

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
IN_BOX_MNIST = Path(__file__).resolve().parents[1] / "assets" / "mnist" / "mnist-test.npz"


def mnist_folder(name: str, data_dir: str | None = None) -> Path:
    """Where torchvision keeps ``name``'s (mnist, fashion-mnist, ...) four files under ``data_dir``."""
    return Path(data_dir or default_data_dir()) / _spec(name).folder


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
        list(SPEC.label_names),
        style=SPEC.style,
        note=note,
    )


def _not_found(spec: DataSpec, folder: Path, tried: str = "") -> DataError:
    files = ", ".join(MNIST_FILES)
    return DataError(
        f"{spec.name} is not in {folder}{tried}. Put the four files {files} (uncompressed, or .gz) in {folder}, "
        f"or pass --data-dir / set VAE_DATA_DIR to the folder that holds {spec.folder}."
    )


def load_idx(spec: DataSpec, req: LoadRequest) -> Dataset:
    """An IDX-format data set from ``req.data_dir`` (torchvision's layout), downloaded by torchvision if
    ``req.download`` and missing. Files that are there are read directly: importing torchvision alone
    takes ~0.8 s."""
    folder = mnist_folder(spec.name, req.data_dir)
    if not missing_mnist_files(spec.name, req.data_dir):
        tr_x, tr_y, te_x, te_y = (torch.from_numpy(np.array(read_idx(folder / f))) for f in MNIST_FILES)
        x = [t.unsqueeze(1).float().div_(255.0) for t in (tr_x, te_x)]
        return Dataset(spec.name, x[0], tr_y.long(), x[1], te_y.long(), list(spec.label_names), style=spec.style)
    if not req.download:
        raise _not_found(spec, folder)
    from torchvision import datasets

    cls = getattr(datasets, spec.folder.split("/")[0])
    splits = []
    for train in (True, False):
        try:  # torchvision downloads only what is not there
            ds = cls(root=str(Path(req.data_dir or default_data_dir())), train=train, download=True)
        except Exception:
            raise _not_found(spec, folder, " and could not be downloaded") from None
        splits.append((ds.data.unsqueeze(1).float().div_(255.0), ds.targets.long()))
    (tr_x, tr_y), (te_x, te_y) = splits
    return Dataset(spec.name, tr_x, tr_y, te_x, te_y, list(spec.label_names), style=spec.style)


def load_mnist(
    name: str = "mnist", data_dir: str | None = None, download: bool = True, need_train: bool = True
) -> Dataset:
    """MNIST or Fashion-MNIST (any IDX data set of the registry) from ``data_dir``: ``vae.datasets.load``.

    Without MNIST's files and with ``need_train`` False, MNIST's test set comes from vae/assets/mnist
    (``load_in_box_mnist``) and nothing is downloaded; Fashion-MNIST has no such copy."""
    from . import load

    return load(name, data_dir=data_dir, download=download, need_train=need_train)


def idx_check(name: str, data_dir: str | None) -> Absent | None:
    """Why the IDX data set ``name`` cannot be read from ``data_dir`` here: which of its files are absent."""
    missing = missing_mnist_files(name, data_dir)
    if not missing:
        return None
    root = data_dir or f"{default_data_dir()} (the default data folder)"
    return Absent("files not found", f"in {root}: {_spec(name).folder} needs {', '.join(missing)} (or their .gz)")


def idx_spec(name: str, folder: str, **kw) -> DataSpec:
    """The spec of an IDX-format data set whose files torchvision keeps in ``folder`` (its class's name,
    then /raw): 28x28 images, read from the data folder, downloaded by the command line if allowed."""
    return DataSpec(
        name=name,
        folder=folder,
        load=lambda req: load_idx(_spec(name), req),
        check=lambda data_dir: idx_check(name, data_dir),
        inputs=("data_dir",),
        sizes=(28,),
        **kw,
    )


def _spec(name: str) -> DataSpec:
    from . import get  # the registry imports this module: look specs up when called

    return get(name)


SPEC = idx_spec(
    "mnist",
    "MNIST/raw",
    title="MNIST",
    summary="70,000 handwritten digits, 28x28 (60,000 to train on); its four files go in the data folder's MNIST/raw.",
    order=30,
    style="digit",
    label_names=tuple(str(i) for i in range(10)),
    fallback=lambda req: load_in_box_mnist(mnist_folder("mnist", req.data_dir)),
)
