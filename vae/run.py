"""One training run, start to end: load the data (or resume a checkpoint), ``fit`` with a save after
every epoch, evaluate by one rule, save.

The command line (``vae.cli``) and the app's Train page (``services.jobs``) both run ``run_training``;
they differ only in how they report progress: ``on_ready`` once the run is set up, and ``fit``'s
callback (``train.Progress``) as it trains. So a model trained either way with the same configs and
seed gets the same weights and the same card numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import distributed
from .checkpoint import load_checkpoint, save
from .config import ModelConfig, TrainConfig
from .data import DataError, Dataset, load_dataset
from .evaluate import evaluate
from .models import VAE, build_model
from .objectives import model_input
from .train import History, Progress, ProgressCallback, fit

IWAE_K = 100  # the end-of-run IWAE's importance samples (0: no IWAE)
IWAE_N = 1000  # ... and its images: the first 1,000 of the test split (None: all of them)
# What a resumed run takes from its caller; every other training setting comes from the checkpoint.
RESUME_SETTINGS = ("epochs", "device", "precision", "compile", "workers")


@dataclass(frozen=True)
class RunSpec:
    """What to train, and where to.

    ``model`` is a new run's architecture; its ``image_shape`` becomes the data's. With ``resume``
    the model, its training settings (but ``RESUME_SETTINGS``), history and Adam's state come from
    the checkpoint at ``out``. ``image_size`` / ``channels`` are passed to ``load_dataset`` (None: the
    data set's own, or the resumed model's).
    """

    out: Path
    train: TrainConfig
    model: ModelConfig | None = None
    resume: bool = False
    image_size: int | None = None
    channels: int | None = None
    iwae_k: int = IWAE_K
    iwae_n: int | None = IWAE_N
    keep_optimizer: bool = True  # save Adam's state with the weights (3x the file; lets --resume go on)


@dataclass
class Ready:
    """A run set up and about to take its first step: what ``on_ready`` receives."""

    model: VAE
    model_config: ModelConfig
    train_config: TrainConfig
    data: Dataset
    history: History  # the epochs done so far (empty for a new run); fit appends to it
    optimizer_state: dict[str, Any] | None


@dataclass
class RunResult:
    """How a run ended. ``metrics`` are the final test metrics (``evaluate``'s dict), None when there
    was no evaluation: the loss diverged (``history.error``), nothing was left to train
    (``already_done``), or this process is not rank 0."""

    history: History
    metrics: dict[str, Any] | None = None
    model: VAE | None = None
    eval_seconds: float = 0.0
    already_done: bool = False


def run_training(
    spec: RunSpec, callback: ProgressCallback | None = None, *, on_ready: Callable[[Ready], None] | None = None
) -> RunResult:
    """Train ``spec`` into ``spec.out``; the caller holds the file's reservation (``checkpoint.reserve``).

    ``on_ready(ready)`` runs on every rank once the data are loaded and the model built, before the
    first step; it may raise to abandon the run. ``callback`` is ``fit``'s (rank 0 only), called
    after each epoch's checkpoint is written; True asks training to stop after the current step.
    Every epoch is saved atomically (a kill loses at most one); a non-finite loss ends the run with
    ``history.error`` and the file keeps the last good epoch. Otherwise rank 0 scores the ELBO on the
    whole test split and the IWAE (``spec.iwae_k`` samples) on its first ``spec.iwae_n`` images, and
    saves the weights as they are (after a stop, mid-epoch) with those metrics.
    """
    resumed = _resume(spec) if spec.resume else None
    if resumed is not None and len(resumed[0].history.epochs) >= resumed[0].train_config.epochs:
        return RunResult(resumed[0].history, already_done=True)
    ready = _prepare(spec, resumed)
    if on_ready is not None:
        on_ready(ready)

    def on_progress(p: Progress) -> bool:
        if p.phase == "epoch":
            _save(spec, ready, p.model, p.optimizer)
        return bool(callback(p)) if callback is not None else False

    history = fit(
        ready.model,
        ready.data,
        ready.train_config,
        on_progress,
        optimizer_state=ready.optimizer_state,
        history=ready.history,
    )
    if history.error or not distributed.is_main():  # rank 0 alone evaluates and writes
        return RunResult(history, model=ready.model)
    model = ready.model.cpu()
    t0 = time.perf_counter()
    x = model_input(ready.data.test_x, ready.model_config)
    metrics = evaluate(model, x, iwae_k=spec.iwae_k, iwae_limit=spec.iwae_n)
    seconds = time.perf_counter() - t0
    _save(spec, ready, model, history.optimizer_state, metrics)
    return RunResult(history, metrics, model, seconds)


@dataclass
class _Resumed:
    """A checkpoint's run, read by rank 0 and handed to every rank."""

    model_config: ModelConfig
    train_config: TrainConfig
    history: History
    optimizer_state: dict[str, Any] | None


def _resume(spec: RunSpec) -> tuple[_Resumed, VAE | None]:
    """The run saved at ``spec.out`` (every rank) and its model (rank 0's; None elsewhere)."""
    loaded: dict[str, VAE] = {}

    def read() -> _Resumed:
        ckpt = load_checkpoint(spec.out)
        loaded["model"] = ckpt.model
        train = spec.train
        if ckpt.train is not None:
            train = TrainConfig(**{**ckpt.train.to_dict(), **{k: getattr(spec.train, k) for k in RESUME_SETTINGS}})
        return _Resumed(ckpt.config, train, History.from_dict(ckpt.history), ckpt.optimizer)

    run = distributed.decide(read)
    return run, loaded.get("model")


def _prepare(spec: RunSpec, resumed: tuple[_Resumed, VAE | None] | None) -> Ready:
    """Load the data on every rank and build the model (a new one, seeded) or take the resumed one."""
    train = resumed[0].train_config if resumed else spec.train
    c, h, _ = resumed[0].model_config.image_shape if resumed else (None, None, None)
    data = distributed.everywhere(
        lambda: load_dataset(
            train.dataset,
            data_dir=train.data_dir,
            image_size=spec.image_size or h,
            channels=spec.channels or c or 1,
            seed=0,
            memory_budget_mb=train.memory_budget_mb,
        )
    )
    if resumed is None:
        if spec.model is None:
            raise ValueError("a new run needs a model config")
        cfg = ModelConfig.from_dict({**spec.model.to_dict(), "image_shape": list(data.image_shape)})
        model = build_model(cfg, torch.Generator().manual_seed(train.seed))
        return Ready(model, cfg, train, data, History(), None)
    run, model = resumed
    cfg = run.model_config
    if data.image_shape != cfg.image_shape:
        raise DataError(f"the data's images are {data.image_shape}, the checkpoint's model needs {cfg.image_shape}")
    # Other ranks start from any weights: DDP copies rank 0's when it wraps the model.
    return Ready(model if model is not None else build_model(cfg), cfg, train, data, run.history, run.optimizer_state)


def _save(spec: RunSpec, ready: Ready, model: VAE, optimizer: Any, metrics: dict[str, Any] | None = None) -> None:
    """Write ``spec.out`` atomically: the weights, both configs, the data set, the history so far."""
    save(
        spec.out,
        model,
        train=ready.train_config,
        dataset=ready.data.info(),
        history=ready.history.to_dict(),
        metrics=metrics or {},
        optimizer=optimizer if spec.keep_optimizer else None,
    )
