"""The Train page's settings, checked before any job starts: configs, or one error in the page's words.

The data-set choices, the inputs each needs and whether it can load here come from the registry
(``vae.datasets``). ``build_configs`` turns the form's values into a ``ModelConfig`` and a ``TrainConfig``,
and checks the data the run would read (the folder and its images, the MNIST files) the way ``vae.data``
would find them; ``start_training`` then starts the run on ``services.jobs.MANAGER``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.jobs import MANAGER, JobManager, TrainingJob
from services.registry import check_name
from vae import datasets
from vae.config import CONV_SIZES, ConfigError, ModelConfig, TrainConfig, field_type, label, parse_ints
from vae.data import DataSpec, folder_problem

IMAGE_SIZES = CONV_SIZES  # folder image sizes offered: every one also fits the conv architecture
LOG_EVERY = 5  # steps between the live curve's points


class SettingsError(ValueError):
    """Settings that cannot start a run; the message says why, in the page's words."""


def choices() -> tuple[str, ...]:
    """The Train form's data-set options, one per registered data set ("image folder" for folder:PATH)."""
    return tuple(s.form_name for s in datasets.specs())


DATASETS = choices()


def spec_for(choice: str) -> DataSpec:
    """The registry's entry for a Train form option; SettingsError for an option no data set has."""
    for s in datasets.specs():
        if s.form_name == choice:
            return s
    raise SettingsError(f"unknown data set {choice!r}: choose one of {', '.join(choices())}")


def data_inputs(choice: str) -> tuple[str, ...]:
    """The data inputs that apply to a data-set option: folder, image_size and channels for an
    image folder, data_dir for MNIST-like data, none for the built-in ones."""
    return spec_for(choice).inputs


def _data_dir(values: Mapping[str, Any]) -> str | None:
    return str(values.get("data_dir") or "").strip() or None


def unavailable(choice: str, data_dir: str | None = None) -> str | None:
    """Why the option cannot train here, with ``data_dir`` as typed ('' or None: the default data folder):
    one message, shown before Start; None when it can."""
    spec = spec_for(choice)
    absent = spec.absent(_data_dir({"data_dir": data_dir}) if "data_dir" in spec.inputs else None)
    if absent is None:
        return None
    text = f"{spec.title} {absent}."
    if spec.folder and "data_dir" in spec.inputs:
        text += f" Put them there, or set the {label(TrainConfig, 'data_dir')} to the folder that holds {spec.folder}."
    return text


def check_folder(folder: str) -> Path:
    """The image folder ``folder`` names, if it holds at least two images (``vae.data``'s rule)."""
    problem = folder_problem(folder)
    if problem:
        raise SettingsError(problem)
    return Path(folder.strip()).expanduser()


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

    ``dataset`` is a Train form option (``choices``); ``values`` maps config field names to widget values
    (``hidden`` as text, e.g. "512,256"), plus the data inputs the data set takes (``folder``,
    ``image_size``, ``channels``, ``data_dir``); fields left out take their config defaults, and inputs
    that do not apply to ``dataset`` are ignored.
    """
    spec = spec_for(dataset)
    try:
        hidden = parse_ints(str(values.get("hidden", "")))
    except ValueError:
        raise SettingsError(
            f"{label(ModelConfig, 'hidden')} must be positive whole numbers separated by commas, "
            f"like 512,256; got {values.get('hidden', '')!r}"
        ) from None
    size = int(values.get("image_size", 32)) if "image_size" in spec.inputs else 28
    channels = int(values.get("channels", 1)) if "channels" in spec.inputs else 1
    # Without an image-size input the job takes the data's own shape once it is loaded.
    model_cfg = _build(ModelConfig, values, hidden=hidden, image_shape=(channels, size, size))
    data_dir = _data_dir(values) if "data_dir" in spec.inputs else None
    folder = str(values.get("folder", "")).strip() if "folder" in spec.inputs else ""
    name = f"{spec.name}:{folder}" if spec.prefix else spec.name
    train_cfg = _build(TrainConfig, {"log_every": LOG_EVERY, **values}, dataset=name, data_dir=data_dir)
    if "folder" in spec.inputs:
        check_folder(folder)
    problem = unavailable(dataset, data_dir)
    if problem:
        raise SettingsError(problem)
    return model_cfg, train_cfg


def start_training(
    name: str, dataset: str, values: Mapping[str, Any], manager: JobManager | None = None
) -> TrainingJob:
    """Check the name and the settings, then start the run: nothing starts (or is written) unless all
    pass. Raises ValueError (SettingsError, JobError) with the one message to show."""
    name = check_name(name.strip())
    model_cfg, train_cfg = build_configs(dataset, values)
    return (manager or MANAGER).start(name, model_cfg, train_cfg)
