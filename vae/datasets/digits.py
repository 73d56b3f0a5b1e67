"""Digits: scikit-learn's 1,797 handwritten 8x8 digits (UCI optdigits), upscaled, 80/20 split."""

from __future__ import annotations

import importlib.util
import inspect

import numpy as np
import torch

from ..images import digits_frame
from .core import Absent, Dataset, DataSpec, disk_cached, split

DIGIT_NAMES = tuple(str(i) for i in range(10))


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
    tr_x, tr_y, te_x, te_y = split(x, y, 0.2, seed)
    return Dataset("digits", tr_x, tr_y, te_x, te_y, list(DIGIT_NAMES), style="digit-8x8")


def _check(data_dir: str | None) -> Absent | None:
    """The digits ship with scikit-learn: absent only without it."""
    if importlib.util.find_spec("sklearn") is None:
        return Absent("scikit-learn not installed", "(it ships these digits: pip install scikit-learn)")
    return None


SPEC = DataSpec(
    name="digits",
    title="Digits",
    summary="scikit-learn's 1,797 handwritten 8x8 digits, upscaled to 28x28: a small data set that trains in seconds.",
    load=lambda req: load_digits(size=req.image_size or 28, seed=req.seed),
    order=20,
    style="digit-8x8",
    label_names=DIGIT_NAMES,
    check=_check,
)
