"""What the pages compute the same way in every session, kept on disk (``vae.data.disk_cached``): a new
session or a server restart reads it back in milliseconds instead of recomputing it.

A key names everything the result depends on: the checkpoint's identity (``Active.key``: its file and
mtime, or an upload's digest), the inputs (their digest) and the source of the code that makes it.
Results are dataclasses of tensors, arrays, numbers, strings and lists of strings, stored as NumPy arrays.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch

from vae.data import disk_cached

T = TypeVar("T")
KINDS = "__kinds__"


def source_of(*functions: Callable) -> str:
    """The source of ``functions`` and the torch version: a key part that changes when the code does."""
    return "".join(inspect.getsource(f) for f in functions) + torch.__version__


def digest(*parts: torch.Tensor | np.ndarray | str | float | int | None) -> str:
    """A short hash of tensors' and arrays' bytes (with their shapes) and of plain values (None too)."""
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, torch.Tensor):
            p = p.detach().cpu().contiguous().numpy()
        if isinstance(p, np.ndarray):
            h.update(f"{p.dtype}{p.shape}".encode())
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(repr(p).encode())
        h.update(b"|")
    return h.hexdigest()[:24]


def to_arrays(obj: Any) -> dict[str, np.ndarray]:
    """A dataclass as NumPy arrays, with the kind of each field (so that it reads back as it was)."""
    out, kinds = {}, {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if v is None:
            kinds[f.name] = ["none"]
        elif isinstance(v, torch.Tensor):
            kinds[f.name], out[f.name] = ["tensor"], v.detach().cpu().numpy()
        elif isinstance(v, np.ndarray):
            kinds[f.name], out[f.name] = ["array"], v
        elif isinstance(v, list | tuple):
            kinds[f.name] = ["list", [str(x) for x in v]]
        else:  # a number or a string
            kinds[f.name] = ["value", v.item() if isinstance(v, np.generic) else v]
    out[KINDS] = np.array(json.dumps(kinds))
    return out


def from_arrays(cls: type[T], arrays: dict[str, np.ndarray]) -> T:
    """The inverse of :func:`to_arrays`."""
    kinds = json.loads(str(arrays[KINDS]))
    values: dict[str, Any] = {}
    for name, (kind, *rest) in kinds.items():
        if kind == "tensor":
            values[name] = torch.from_numpy(np.array(arrays[name]))
        elif kind == "array":
            values[name] = np.array(arrays[name])
        else:
            values[name] = rest[0] if rest else None
    return cls(**values)


def cached(cls: type[T], name: str, key: str, make: Callable[[], T]) -> T:
    """``make()``, a ``cls`` dataclass, kept on disk as .cache/NAME-<hash of key>.npz."""
    made: list[T] = []

    def build() -> dict[str, np.ndarray]:
        made.append(make())
        return to_arrays(made[0])

    arrays = disk_cached(name, key, build)
    if made:
        return made[0]
    try:
        return from_arrays(cls, arrays)
    except (KeyError, TypeError, ValueError):  # a file of another layout under the same key: make it again
        return make()
