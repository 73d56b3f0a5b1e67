"""The Train page's settings, checked before any job starts: configs, or one error in the page's words.

``build_configs`` turns the form's values into a ``ModelConfig`` and a ``TrainConfig``, and checks
the data the run would read (the folder and its images, the MNIST files) the way ``vae.data``
would find them; ``start_training`` then starts the run on ``services.jobs.MANAGER``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.jobs import MANAGER, JobManager, TrainingJob
from services.registry import check_name
from vae.config import CONV_SIZES, ConfigError, ModelConfig, TrainConfig, field_type, label, parse_ints
from vae.data import IMAGE_SUFFIXES, MNIST_CLASSES, MNIST_FILES, default_data_dir, iter_images, missing_mnist_files

FOLDER = "image folder"
DATASETS = ("moons", "digits", "mnist", "fashion-mnist", FOLDER)  # the page's choices; FOLDER means folder:PATH
MNIST_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
IMAGE_SIZES = CONV_SIZES  # folder image sizes offered: every one also fits the conv architecture
LOG_EVERY = 5  # steps between the live curve's points


class SettingsError(ValueError):
    """Settings that cannot start a run; the message says why, in the page's words."""


def data_inputs(dataset: str) -> tuple[str, ...]:
    """The data inputs that apply to a data-set choice: folder, image_size and channels for an
    image folder, data_dir for MNIST-like data, none for the built-in ones."""
    if dataset == FOLDER:
        return ("folder", "image_size", "channels")
    if dataset in MNIST_NAMES:
        return ("data_dir",)
    return ()


def check_folder(folder: str) -> Path:
    """The image folder ``folder`` names, if it holds at least two images (``vae.data``'s rule)."""
    text = folder.strip()
    if not text:
        raise SettingsError("give the image folder's path")
    root = Path(text).expanduser()
    if not root.exists():
        raise SettingsError(f"the image folder {root} does not exist")
    if not root.is_dir():
        raise SettingsError(f"{root} is a file, not a folder")
    found = len(list(itertools.islice(iter_images(root), 2)))
    if found == 0:
        kinds = ", ".join(sorted(IMAGE_SUFFIXES))
        raise SettingsError(f"the image folder {root} holds no images ({kinds}), in it or in its sub-folders")
    if found < 2:
        raise SettingsError(f"the image folder {root} holds only one image; at least 2 are needed")
    return root


def check_mnist(dataset: str, data_dir: str | None) -> None:
    """Refuse MNIST / Fashion-MNIST unless its four files are where ``vae.data`` will look."""
    missing = missing_mnist_files(dataset, data_dir)
    if missing:
        root = data_dir or f"{default_data_dir()} (the default data folder)"
        sub = f"{MNIST_CLASSES[dataset]}/raw"
        raise SettingsError(
            f"{MNIST_NAMES[dataset]} files not found in {root}: {sub} needs {', '.join(MNIST_FILES)} "
            f"(or their .gz). Put them there, or set the MNIST data folder to the folder that holds {sub}."
        )


def _coerce(cls: type, name: str, value: Any) -> Any:
    """A widget's value as the field's type: number inputs give floats for whole numbers and back."""
    tp, _ = field_type(cls, name)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _build(cls: type, values: Mapping[str, Any], **fixed: Any) -> Any:
    names = {f.name for f in dataclasses.fields(cls)} - set(fixed)
    kwargs = {k: _coerce(cls, k, v) for k, v in values.items() if k in names}
    try:
        return cls(**kwargs, **fixed)
    except ConfigError as e:
        raise SettingsError(f"{label(cls, e.field)} {e.detail}" if e.field else str(e)) from None


def build_configs(dataset: str, values: Mapping[str, Any]) -> tuple[ModelConfig, TrainConfig]:
    """The configs of the run the form describes, or SettingsError with one message.

    ``values`` maps config field names to widget values (``hidden`` as text, e.g. "512,256"),
    plus ``folder``, ``image_size`` and ``channels`` for an image folder; fields left out take
    their config defaults, and inputs that do not apply to ``dataset`` are ignored.
    """
    if dataset not in DATASETS:
        raise SettingsError(f"unknown data set {dataset!r}: choose one of {', '.join(DATASETS)}")
    try:
        hidden = parse_ints(str(values.get("hidden", "")))
    except ValueError:
        raise SettingsError(
            f"{label(ModelConfig, 'hidden')} must be positive whole numbers separated by commas, "
            f"like 512,256; got {values.get('hidden', '')!r}"
        ) from None
    if dataset == FOLDER:
        size, channels = int(values.get("image_size", 32)), int(values.get("channels", 1))
        shape = (channels, size, size)
    else:
        shape = (1, 28, 28)  # the job takes the data's own shape once it is loaded
    model_cfg = _build(ModelConfig, values, hidden=hidden, image_shape=shape)
    data_dir = (str(values.get("data_dir") or "").strip() or None) if dataset in MNIST_NAMES else None
    name = f"folder:{str(values.get('folder', '')).strip()}" if dataset == FOLDER else dataset
    train_cfg = _build(TrainConfig, {"log_every": LOG_EVERY, **values}, dataset=name, data_dir=data_dir)
    if dataset == FOLDER:
        check_folder(str(values.get("folder", "")))
    elif dataset in MNIST_NAMES:
        check_mnist(dataset, data_dir)
    return model_cfg, train_cfg


def start_training(
    name: str, dataset: str, values: Mapping[str, Any], manager: JobManager | None = None
) -> TrainingJob:
    """Check the name and the settings, then start the run: nothing starts (or is written) unless all
    pass. Raises ValueError (SettingsError, JobError) with the one message to show."""
    name = check_name(name.strip())
    model_cfg, train_cfg = build_configs(dataset, values)
    return (manager or MANAGER).start(name, model_cfg, train_cfg)
