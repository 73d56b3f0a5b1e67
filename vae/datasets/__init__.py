"""The data-set registry: every module of this package that defines ``SPEC`` (a ``DataSpec``) is a data set.

Adding a data set is one file here (its loader and its ``SPEC``) plus its tests: the command line's
``--dataset`` help, ``load``, the Train page's choices and the pages' special cases (``fit``,
``example_pair``, ``fallback``) all read the registry. Modules are found by listing the package, so
nothing else names them.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from .core import Absent, DataError, Dataset, DataSpec, LoadRequest  # noqa: F401 (re-exported)


@functools.cache
def _registry() -> dict[str, DataSpec]:
    """Every SPEC of the package's modules, by name, in their ``order``."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name == "core":
            continue
        spec = getattr(importlib.import_module(f"{__name__}.{info.name}"), "SPEC", None)
        if isinstance(spec, DataSpec):
            found.append(spec)
    found.sort(key=lambda s: (s.order, s.name))
    names = [s.name for s in found]
    if len(set(names)) != len(names):
        raise RuntimeError(f"two data sets share a name: {names}")
    return {s.name: s for s in found}


def specs() -> list[DataSpec]:
    """Every registered data set, in the order the CLI and the Train form list them."""
    return list(_registry().values())


def names() -> tuple[str, ...]:
    """The data sets' names (an image folder's is ``folder``, used as ``folder:PATH``)."""
    return tuple(_registry())


def cli_help() -> str:
    """The ``--dataset`` choices as the command line writes them: ``moons | digits | ... | folder:PATH``."""
    return " | ".join(s.cli for s in specs())


def _unknown(name: str) -> DataError:
    plain = [s.name for s in specs() if not s.prefix]
    return DataError(
        f"unknown data set {name!r}: use one of {', '.join(plain)} or "
        + " or ".join(s.cli for s in specs() if s.prefix)
    )


def get(name: str) -> DataSpec:
    """The spec of a data set's name as a checkpoint or the CLI gives it (``folder:/some/path`` included);
    DataError if there is none."""
    reg = _registry()
    head, sep, _ = name.partition(":")
    spec = reg.get(head if sep else name)
    if spec is None or spec.prefix != bool(sep):
        raise _unknown(name)
    return spec


def find(name: str) -> DataSpec | None:
    """``get``, or None for a name no data set has (an uploaded checkpoint's, say)."""
    try:
        return get(name)
    except DataError:
        return None


def load(
    name: str,
    data_dir: str | None = None,
    image_size: int | None = None,
    channels: int = 1,
    seed: int = 0,
    download: bool = True,
    memory_budget_mb: float | None = None,
    need_train: bool = True,
) -> Dataset:
    """Load a data set by its CLI name (see ``cli_help``).

    ``download`` lets a loader fetch files that are missing (torchvision, for MNIST / Fashion-MNIST).
    ``need_train`` False (evaluation, the app) takes the spec's ``fallback`` when its files are absent:
    MNIST's test set shipped in vae/assets/mnist, with no training images.
    ``memory_budget_mb`` applies to folders only (see ``vae.datasets.folder``); others ignore it.
    """
    spec = get(name)
    if spec.sizes is not None and image_size not in (None, *spec.sizes):
        sides = " or ".join(f"{s}x{s}" for s in spec.sizes)
        raise DataError(f"{name} images are {sides}; --image-size {image_size} is not supported")
    req = LoadRequest(
        path=name.partition(":")[2],
        data_dir=data_dir,
        image_size=image_size,
        channels=channels,
        seed=seed,
        download=download,
        memory_budget_mb=memory_budget_mb,
        need_train=need_train,
    )
    if not need_train and spec.fallback is not None and spec.absent(data_dir) is not None:
        return spec.fallback(req)
    return spec.load(req)
