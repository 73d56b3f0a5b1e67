"""Configuration dataclasses: one describes a model completely, one a training run.

Both are saved as JSON inside every checkpoint and rebuilt from it, so a checkpoint is
self-describing (nanoGPT / pythae style).

Each field's metadata is the one schema of that option (see ``option``): its help text, label,
choices, bounds and command-line flag. ``validate`` checks every field from it; the training
CLI (``vae.cli``) and the app's Train form (``ui.forms``) are generated from it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import datasets

KINDS = ("vae", "ae")
ARCHS = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian")
CONV_SIZES = (28, 32, 64)
PRECISIONS = ("fp32", "bf16")


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type, or out of range.

    ``field`` names the option at fault (None for a rule between options) and ``detail`` is the
    message without that name, so that a caller can name the option in its own words.
    """

    def __init__(self, message: str, field: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.detail = detail if detail is not None else message


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


def _fail(name: str, detail: str) -> typing.NoReturn:
    raise ConfigError(f"{name} {detail}", field=name, detail=detail)


def option(
    default: Any,
    help: str = "",
    *,
    label: str | None = None,
    flag: str | None = None,
    choices: tuple[Any, ...] | None = None,
    min: float | None = None,
    max: float | None = None,
    min_open: bool = False,
    length: tuple[int, int] | None = None,
    metavar: str | None = None,
) -> Any:
    """A dataclass field whose metadata is the option's schema.

    ``min``/``max`` bound a number (or each item of a tuple), inclusive unless ``min_open``;
    ``length`` bounds a tuple's length; ``flag`` is its ``python -m vae.train`` flag (None: none).
    """
    meta = {
        "help": help,
        "label": label,
        "flag": flag,
        "choices": choices,
        "min": min,
        "max": max,
        "min_open": min_open,
        "length": length,
        "metavar": metavar,
    }
    return field(default=default, metadata={k: v for k, v in meta.items() if v is not None and v is not False})


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model's architecture and its objective.

    image_shape is (C, H, W). For ``arch="mlp"`` ``hidden`` are the widths of the hidden
    layers of the encoder (the decoder mirrors them); for ``arch="conv"`` they are the
    channel counts of the stride-2 convolutions.
    """

    kind: str = option("vae", label="Model", flag="--kind", choices=KINDS)
    arch: str = option("mlp", label="Architecture", flag="--arch", choices=ARCHS)
    image_shape: tuple[int, int, int] = option((1, 28, 28), "(channels, height, width)", label="Image shape")
    # No flag here: --hidden's default depends on --arch, so vae.cli writes that flag itself.
    hidden: tuple[int, ...] = option(
        (400,), "layer widths (mlp) or conv channels (conv)", label="Hidden sizes", min=1, max=4096, length=(1, 6)
    )
    latent_dim: int = option(20, label="Latent size", flag="--latent-dim", min=2, max=128)
    beta: float = option(1.0, "weight of the KL term (beta-VAE)", label="β (KL weight)", flag="--beta", min=0, max=1000)
    likelihood: str = option("bernoulli", label="Decoder", flag="--likelihood", choices=LIKELIHOODS)
    # Gaussian decoder p(x|z) = N(mean, sigma^2 I): sigma fixed at `sigma`, or learned
    # (one scalar log-sigma, initialised at log(sigma)).
    sigma: float = option(
        0.1, "Gaussian decoder's standard deviation", label="Gaussian decoder σ", flag="--sigma", min=1e-4, max=10
    )
    learn_sigma: bool = option(False, "learn the Gaussian decoder's sigma", label="Learn σ", flag="--learn-sigma")
    mc_samples: int = option(
        1, "L: Monte Carlo samples of z per image", label="L (samples of z)", flag="--mc-samples", min=1, max=1000
    )
    binarize: bool = option(
        False,
        "dynamic binarization of the training images",
        label="Dynamic binarization",
        flag="--binarize",
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_shape", tuple(int(v) for v in self.image_shape))
        object.__setattr__(self, "hidden", tuple(int(v) for v in self.hidden))
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError unless every field fits its schema and the fields fit together."""
        check_fields(self)
        _check(len(self.image_shape) == 3, "image_shape must be (C, H, W)")
        c, h, w = self.image_shape
        _check(c in (1, 3), f"images must have 1 or 3 channels, got {c}")
        _check(4 <= h <= 256 and 4 <= w <= 256, f"image size {h}x{w} is out of range 4..256")
        if self.arch == "conv":
            _check(h == w and h in CONV_SIZES, f"conv needs square images of {CONV_SIZES}, got {h}x{w}")
            _check(len(self.hidden) <= 4, "conv supports at most 4 stride-2 layers")

    @property
    def n_pixels(self) -> int:
        c, h, w = self.image_shape
        return c * h * w

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["image_shape"] = list(self.image_shape)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        return _from_dict(cls, d)


@dataclass(frozen=True)
class TrainConfig:
    """A training run: data, optimisation and reproducibility settings."""

    dataset: str = option("moons", datasets.cli_help(), flag="--dataset")  # the registry's names
    epochs: int = option(
        10, "total epochs (with --resume: up to this many)", label="Epochs", flag="--epochs", min=1, max=100_000
    )
    batch_size: int = option(128, label="Batch size", flag="--batch-size", min=1, max=65_536)
    lr: float = option(1e-3, label="Learning rate", flag="--lr", min=0, min_open=True, max=10)
    kl_warmup: int = option(
        0,
        "epochs over which the KL term's weight rises linearly from 0 to beta (KL warm-up, Sønderby et al. 2016)",
        label="KL warm-up (epochs)",
        flag="--kl-warmup",
        min=0,
        max=100_000,
    )
    seed: int = option(1, label="Seed", flag="--seed")
    device: str = option("auto", "auto (CUDA, then MPS, then CPU) | cpu | cuda | cuda:N | mps", flag="--device")
    data_dir: str | None = option(
        None,
        "folder holding MNIST/raw etc. (default ./data or $VAE_DATA_DIR)",
        label="MNIST data folder",
        flag="--data-dir",
    )
    log_every: int = option(10, "steps between progress callbacks (and finiteness checks)", min=1)
    eval_batch_size: int = option(1000, min=1)
    precision: str = option(
        "fp32", "bf16: bfloat16 autocast of the forward pass", flag="--precision", choices=PRECISIONS
    )  # bf16 autocasts the forward pass only: the weights stay fp32
    compile: bool = option(False, "torch.compile the training step (worth it on a GPU)", flag="--compile")
    memory_budget_mb: float | None = option(
        None,
        "image folders whose decoded images exceed this stream from disk (default 2048 or $VAE_MEMORY_BUDGET_MB)",
        flag="--memory-budget",
        metavar="MB",
        min=0,
    )
    workers: int | None = option(
        None, "DataLoader workers per process when streaming", flag="--workers", min=0, max=64
    )  # None: up to 4

    def __post_init__(self) -> None:
        check_fields(self)
        _check(
            self.device in ("auto", "cpu", "cuda", "mps") or self.device.startswith("cuda:"),
            f"device must be auto, cpu, cuda or mps, got {self.device!r}",
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        # Checkpoints saved while TrainConfig had an `extra` field carry "extra": {} (only tests
        # ever filled it): drop it so that they still load.
        if isinstance(d, dict) and "extra" in d:
            d = {k: v for k, v in d.items() if k != "extra"}
        return _from_dict(cls, d)


# --------------------------------------------------------------------------- the schema


@functools.cache
def _types(cls: type) -> dict[str, tuple[type, bool]]:
    """Each field's base type (int, float, str, bool or tuple) and whether None is allowed."""
    out = {}
    for name, tp in typing.get_type_hints(cls).items():
        nullable = False
        if typing.get_origin(tp) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            nullable, tp = len(args) < len(typing.get_args(tp)), args[0]
        out[name] = (typing.get_origin(tp) or tp, nullable)
    return out


def field_type(cls: type, name: str) -> tuple[type, bool]:
    """(base type, accepts None) of a config field, e.g. ``(float, True)`` for ``float | None``."""
    return _types(cls)[name]


def meta(cls: type, name: str) -> Mapping[str, Any]:
    """The schema (metadata) of one config field."""
    return next(f.metadata for f in dataclasses.fields(cls) if f.name == name)


def label(cls: type, name: str) -> str:
    """The option's name in words (its label, else the field name)."""
    return meta(cls, name).get("label") or name.replace("_", " ")


def _fmt(v: float) -> str:
    return str(v) if isinstance(v, int) else f"{v:g}"


def _bounds(m: Mapping[str, Any]) -> str:
    lo, hi = m.get("min"), m.get("max")
    if lo is not None and hi is not None:
        return f"in ({_fmt(lo)}, {_fmt(hi)}]" if m.get("min_open") else f"in {_fmt(lo)}..{_fmt(hi)}"
    return f"> {_fmt(lo)}" if m.get("min_open") else f">= {_fmt(lo)}" if lo is not None else f"<= {_fmt(hi)}"


def in_bounds(m: Mapping[str, Any], v: float) -> bool:
    """Whether the number ``v`` lies within the bounds of the schema ``m``."""
    lo, hi = m.get("min"), m.get("max")
    above = lo is None or (v > lo if m.get("min_open") else v >= lo)
    return above and (hi is None or v <= hi)


def _check_value(name: str, tp: type, m: Mapping[str, Any], v: Any) -> None:
    """Raise ConfigError unless ``v`` has type ``tp`` and fits the choices and bounds of ``m``."""
    if tp is bool and not isinstance(v, bool):
        _fail(name, "must be true or false")
    if tp is int and not _is_int(v):
        _fail(name, f"must be an integer, got {v!r}")
    if tp is float and not (_is_number(v) and math.isfinite(v)):
        _fail(name, f"must be a finite number, got {v!r}")
    if tp is str and not isinstance(v, str):
        _fail(name, f"must be a string, got {v!r}")
    if "choices" in m and v not in m["choices"]:
        _fail(name, f"must be one of {m['choices']}, got {v!r}")
    if tp is tuple:
        lo, hi = m.get("length", (0, math.inf))
        if not lo <= len(v) <= hi:
            _fail(name, f"needs {lo} to {hi} values, got {len(v)}")
        bad = [x for x in v if not in_bounds(m, x)]
        if bad:
            _fail(name, f"values must be {_bounds(m)}, got {bad[0]}")
    elif ("min" in m or "max" in m) and not in_bounds(m, v):
        _fail(name, f"must be {_bounds(m)}, got {v!r}")


def check_fields(cfg: Any) -> None:
    """Check every field of a config dataclass against its type and schema (``option``)."""
    for f in dataclasses.fields(cfg):
        tp, nullable = field_type(type(cfg), f.name)
        v = getattr(cfg, f.name)
        if v is None:
            if not nullable:
                _fail(f.name, "must be given")
            continue
        _check_value(f.name, tp, f.metadata, v)


def parse_ints(text: str) -> tuple[int, ...]:
    """'512,256' -> (512, 256): sizes as typed (empty parts are skipped); ValueError if not positive integers."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise ValueError(f"expected positive integers, got {text!r}")
    return values


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _from_dict(cls: type, d: dict[str, Any]) -> Any:
    if not isinstance(d, dict):
        raise ConfigError(f"{cls.__name__} must be a JSON object")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
    try:
        return cls(**d)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"bad {cls.__name__}: {e}") from None
