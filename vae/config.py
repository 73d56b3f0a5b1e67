"""Configuration dataclasses: one describes a model completely, one a training run.

Both are saved as JSON inside every checkpoint and rebuilt from it, so a checkpoint is
self-describing (nanoGPT / pythae style).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

KINDS = ("vae", "ae")
ARCHS = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian")
CONV_SIZES = (28, 32, 64)
PRECISIONS = ("fp32", "bf16")


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type, or out of range."""


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model's architecture and its objective.

    image_shape is (C, H, W). For ``arch="mlp"`` ``hidden`` are the widths of the hidden
    layers of the encoder (the decoder mirrors them); for ``arch="conv"`` they are the
    channel counts of the stride-2 convolutions.
    """

    kind: str = "vae"
    arch: str = "mlp"
    image_shape: tuple[int, int, int] = (1, 28, 28)
    hidden: tuple[int, ...] = (400,)
    latent_dim: int = 20
    beta: float = 1.0
    likelihood: str = "bernoulli"
    # Gaussian decoder p(x|z) = N(mean, sigma^2 I): sigma fixed at `sigma`, or learned
    # (one scalar log-sigma, initialised at log(sigma)).
    sigma: float = 0.1
    learn_sigma: bool = False
    mc_samples: int = 1  # L in the SGVB estimator
    binarize: bool = False  # dynamic binarization of the training images

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_shape", tuple(int(v) for v in self.image_shape))
        object.__setattr__(self, "hidden", tuple(int(v) for v in self.hidden))
        self.validate()

    def validate(self) -> None:
        _check(self.kind in KINDS, f"kind must be one of {KINDS}, got {self.kind!r}")
        _check(self.arch in ARCHS, f"arch must be one of {ARCHS}, got {self.arch!r}")
        _check(
            self.likelihood in LIKELIHOODS,
            f"likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}",
        )
        _check(len(self.image_shape) == 3, "image_shape must be (C, H, W)")
        c, h, w = self.image_shape
        _check(c in (1, 3), f"images must have 1 or 3 channels, got {c}")
        _check(4 <= h <= 256 and 4 <= w <= 256, f"image size {h}x{w} is out of range 4..256")
        _check(_is_int(self.latent_dim) and _is_int(self.mc_samples), "latent_dim and mc_samples must be integers")
        _check(2 <= self.latent_dim <= 128, f"latent_dim must be in 2..128, got {self.latent_dim}")
        _check(1 <= len(self.hidden) <= 6, "hidden needs 1 to 6 layer sizes")
        _check(all(1 <= v <= 4096 for v in self.hidden), "hidden sizes must be in 1..4096")
        if self.arch == "conv":
            _check(h == w and h in CONV_SIZES, f"conv needs square images of {CONV_SIZES}, got {h}x{w}")
            _check(len(self.hidden) <= 4, "conv supports at most 4 stride-2 layers")
        _check(
            isinstance(self.beta, (int, float)) and math.isfinite(self.beta) and 0 <= self.beta <= 1000,
            f"beta must be a finite number in 0..1000, got {self.beta!r}",
        )
        _check(
            isinstance(self.sigma, (int, float)) and math.isfinite(self.sigma) and 1e-4 <= self.sigma <= 10,
            f"sigma must be in 1e-4..10, got {self.sigma!r}",
        )
        _check(1 <= self.mc_samples <= 1000, f"mc_samples must be in 1..1000, got {self.mc_samples}")
        _check(isinstance(self.learn_sigma, bool), "learn_sigma must be true or false")
        _check(isinstance(self.binarize, bool), "binarize must be true or false")

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

    dataset: str = "moons"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 1
    device: str = "auto"
    data_dir: str | None = None
    log_every: int = 10  # steps between progress callbacks (and finiteness checks)
    eval_batch_size: int = 1000
    precision: str = "fp32"  # "bf16": bfloat16 autocast of the forward pass (weights stay fp32)
    compile: bool = False  # torch.compile the training step
    # Image folders whose decoded float32 images exceed this stream from disk (None: the default).
    memory_budget_mb: float | None = None
    workers: int | None = None  # DataLoader workers per process when streaming (None: up to 4)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(
            _is_int(self.epochs) and _is_int(self.batch_size) and _is_int(self.seed),
            "epochs, batch_size and seed must be integers",
        )
        _check(1 <= self.epochs <= 100_000, f"epochs must be in 1..100000, got {self.epochs}")
        _check(1 <= self.batch_size <= 65_536, f"batch_size must be in 1..65536, got {self.batch_size}")
        _check(
            isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and 0 < self.lr <= 10,
            f"lr must be in (0, 10], got {self.lr!r}",
        )
        _check(
            isinstance(self.device, str)
            and (self.device in ("auto", "cpu", "cuda", "mps") or self.device.startswith("cuda:")),
            f"device must be auto, cpu, cuda or mps, got {self.device!r}",
        )
        _check(_is_int(self.log_every) and self.log_every >= 1, "log_every must be an integer >= 1")
        _check(_is_int(self.eval_batch_size) and self.eval_batch_size >= 1, "eval_batch_size must be an integer >= 1")
        _check(self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        _check(isinstance(self.compile, bool), "compile must be true or false")
        _check(
            self.memory_budget_mb is None
            or (
                isinstance(self.memory_budget_mb, (int, float))
                and not isinstance(self.memory_budget_mb, bool)
                and math.isfinite(self.memory_budget_mb)
                and self.memory_budget_mb >= 0
            ),
            f"memory_budget_mb must be a number >= 0, got {self.memory_budget_mb!r}",
        )
        _check(
            self.workers is None or (_is_int(self.workers) and 0 <= self.workers <= 64),
            f"workers must be an integer in 0..64, got {self.workers!r}",
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        return _from_dict(cls, d)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


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
