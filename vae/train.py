"""Training: one ``fit`` function; ``vae.run.run_training`` runs it for the CLI (``vae.cli``) and the
app's Train page.

CLI: ``python -m vae.train --dataset moons --kind vae --arch mlp --hidden 400 --latent-dim 20
--epochs 10 --out checkpoints/NAME.safetensors`` (``--help`` lists every flag).
"""

from __future__ import annotations

# python -m vae.train: hand over to the one entry (vae.cli) before defining anything; vae.cli imports this
# file again as vae.train, so its classes and functions exist once.
if __name__ == "__main__":
    import sys

    from vae.cli import train_main

    sys.exit(train_main())

import copy
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from . import distributed
from .config import TrainConfig
from .data import Dataset
from .evaluate import split_terms
from .models import VAE
from .objectives import elbo_terms, model_input
from .optim import adam


class TrainingError(RuntimeError):
    """Training cannot go on (the loss diverged, say); the message says why."""


@dataclass
class Progress:
    """What a progress callback receives: every ``log_every`` steps and at each epoch's end.

    Losses are running means over the epoch so far, in nats per image (loss = -recon + beta*KL).
    ``test`` holds the test-split ELBO terms at the end of an epoch (phase "epoch").
    """

    phase: str  # "step" or "epoch"
    epoch: int  # 1-based
    epochs: int
    step: int  # within the epoch, 1-based
    steps_per_epoch: int
    global_step: int
    loss: float
    recon: float
    kl: float
    samples_per_s: float
    eta_s: float
    test: dict[str, float] | None = None
    model: VAE | None = field(default=None, repr=False)
    optimizer: torch.optim.Optimizer | None = field(default=None, repr=False)


ProgressCallback = Callable[[Progress], Any]  # return True to ask training to stop


@dataclass
class History:
    """Per-epoch and per-logged-step metrics; JSON-able through ``to_dict``."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    steps: list[dict[str, float]] = field(default_factory=list)
    stopped: bool = False  # stopped early on request
    error: str | None = None  # why training stopped on its own (a diverged loss)
    optimizer_state: dict[str, Any] | None = field(default=None, repr=False)  # not serialised
    skipped: list[str] = field(default_factory=list, repr=False)  # streamed files that could not be read

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "steps": self.steps, "stopped": self.stopped, "error": self.error}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> History:
        d = d or {}
        return cls(list(d.get("epochs", [])), list(d.get("steps", [])), bool(d.get("stopped")), d.get("error"))


def resolve_device(name: str = "auto") -> torch.device:
    """auto -> CUDA if available, then Apple's MPS, then CPU.

    Under torchrun each process takes the GPU of its LOCAL_RANK; MPS has no distributed
    backend, so a multi-process run never picks it.
    """
    ddp = distributed.launched()
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif not ddp and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        else:
            return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise TrainingError("--device cuda was asked for, but no CUDA GPU is available")
        if ddp:
            local = distributed.local_rank()
            if local >= torch.cuda.device_count():
                raise TrainingError(
                    f"process {local} on this machine has no GPU of its own ({torch.cuda.device_count()} visible): "
                    "start at most one process per GPU (--nproc_per_node)"
                )
            return torch.device("cuda", local)
    if name == "mps" and ddp:
        raise TrainingError(
            "multi-process training runs on CUDA (NCCL) or the CPU (Gloo), not on MPS: pass --device cpu"
        )
    return torch.device(name)


def test_metrics(model: VAE, x: torch.Tensor, batch_size: int = 1000, seed: int = 0) -> dict[str, float]:
    """Test-split ELBO, recon and KL (one z per image), nats per image.

    Under DDP each rank scores its share of x and the sums are reduced, so every rank
    gets the metrics of the whole split.
    """
    model.eval()
    r, w = distributed.rank(), distributed.world_size()
    gen = torch.Generator(device=model.device).manual_seed(seed * 1_000 + r)
    terms = split_terms(model, x[r::w], batch_size, generator=gen)
    count = torch.tensor([len(terms)], dtype=terms.dtype, device=terms.device)
    sums = distributed.all_reduce(torch.cat([terms.sum(0), count]))
    model.train()
    elbo, recon, kl = (sums[:3] / sums[3].clamp(min=1)).tolist()
    return {"elbo": elbo, "recon": recon, "kl": kl}


class _Objective(torch.nn.Module):
    """The training loss as a module, so DDP's gradient hooks and torch.compile see one forward.

    forward(x (B, C, H, W), weight (B,) or None, generator) -> (loss, mean recon, mean KL); ``weight``
    zeroes rows a streamed batch could not read (the batch keeps its size on every rank); the
    reparameterization's noise comes from ``generator``. During a KL warm-up the KL term weighs
    ``beta * warmup`` (a 0-d buffer set before each step, so a compiled forward is not rebuilt).
    """

    def __init__(self, model: VAE) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("warmup", torch.ones((), device=model.device), persistent=False)
        self.warming = False

    def forward(
        self, x: torch.Tensor, weight: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, ...]:
        t = elbo_terms(self.model, x, generator=generator)
        beta = self.model.config.beta * self.warmup if self.warming else self.model.config.beta
        if weight is None:
            loss = -(t.recon - beta * t.kl).mean() if self.warming else t.loss
            return loss, t.recon.mean(), t.kl.mean()
        total = weight.sum().clamp(min=1)
        per_image = -(t.recon - beta * t.kl)
        return (per_image * weight).sum() / total, (t.recon * weight).sum() / total, (t.kl * weight).sum() / total


class _Batches:
    """One epoch's training batches for this rank: slices of the in-memory tensor, or a
    DataLoader over a streamed folder. Every rank runs the same number of steps."""

    def __init__(self, data: Dataset, config: TrainConfig, device: torch.device) -> None:
        self.device, self.rank, self.world = device, distributed.rank(), distributed.world_size()
        self.stream = data.train_stream
        n = data.n_train if self.stream is not None else len(data.train_x)
        self.per_rank = n // self.world  # equal shares: DDP needs the same steps on every rank
        if self.per_rank < 1:
            raise TrainingError(f"{n} training images cannot be shared among {self.world} processes")
        self.bs = min(config.batch_size, self.per_rank)
        self.steps = self.per_rank // self.bs  # drop the ragged last batch: every step sees bs images
        if self.stream is None:
            self.train_x = data.train_x.to(device)
            return
        from torch.utils.data import DataLoader, DistributedSampler

        self.sampler = DistributedSampler(
            self.stream, num_replicas=self.world, rank=self.rank, shuffle=True, seed=config.seed, drop_last=True
        )
        workers = config.workers
        if workers is None:
            workers = min(4, max(1, (os.cpu_count() or 1) // self.world))
        # Forking a process whose other threads may hold locks (the app trains in a thread beside
        # its server) can deadlock the child: workers are spawned there, forked from a CLI.
        spawn = workers > 0 and threading.current_thread() is not threading.main_thread()
        self.loader = DataLoader(
            self.stream,
            batch_size=self.bs,
            sampler=self.sampler,
            drop_last=True,
            num_workers=workers,
            pin_memory=device.type == "cuda",
            persistent_workers=workers > 0,
            multiprocessing_context="spawn" if spawn else None,
        )

    def epoch(
        self, epoch: int, generator: torch.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, int, list[int]]]:
        """This epoch's (x (bs, C, H, W) on the device, weight (bs,) or None, rows read, unreadable
        indices). The order is drawn here, at the call, from ``generator`` (seeded alike on every rank)."""
        if self.stream is None:
            # The same permutation on every rank, then a stride per rank: disjoint shares.
            n = self.per_rank * self.world
            perm = torch.randperm(n, generator=generator, device=self.device)[self.rank :: self.world]
            return self._slices(perm)
        self.sampler.set_epoch(epoch)
        return self._loaded()

    def _slices(self, perm: torch.Tensor) -> Iterator[tuple[torch.Tensor, None, int, list[int]]]:
        for step in range(self.steps):
            yield self.train_x[perm[step * self.bs : (step + 1) * self.bs]], None, self.bs, []

    def _loaded(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, int, list[int]]]:
        for x, ok, idx in self.loader:
            bad = [] if bool(ok.all()) else idx[~ok].tolist()
            weight = None if not bad else ok.to(self.device, torch.float32, non_blocking=True)
            yield x.to(self.device, non_blocking=True), weight, len(x) - len(bad), bad


def _step_function(model: VAE, config: TrainConfig, device: torch.device) -> Callable[..., tuple[torch.Tensor, ...]]:
    """The loss forward for one batch: DDP-wrapped under torchrun, compiled and bf16 if asked."""
    objective = _Objective(model)
    fn: torch.nn.Module = objective
    if distributed.world_size() > 1:
        from torch.nn.parallel import DistributedDataParallel

        # Wraps the objective, not the model: DDP hooks forward(), and the model's encode/decode
        # are plain methods. Parameters start from rank 0's copy.
        fn = DistributedDataParallel(fn, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        fn = torch.compile(fn)
    bf16 = config.precision == "bf16"

    def step(x: torch.Tensor, weight: torch.Tensor | None, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            return fn(x, weight, generator)

    step.objective = objective  # type: ignore[attr-defined]  # for the KL warm-up's weight
    return step


def warmup_weight(config: TrainConfig, epoch: int, step: int, steps: int) -> float:
    """The KL term's share of beta at ``step`` (1-based) of ``steps`` in ``epoch`` (1-based): rises
    linearly from 0 over the first ``config.kl_warmup`` epochs, then 1."""
    if config.kl_warmup <= 0:
        return 1.0
    return min(1.0, ((epoch - 1) + step / max(steps, 1)) / config.kl_warmup)


class _Run:
    """What ``fit`` keeps across epochs: throughput for the progress reports, and the callback."""

    def __init__(self, config: TrainConfig, history: History, steps: int, bs: int, callback) -> None:
        self.config, self.history, self.steps, self.bs = config, history, steps, bs
        self.callback = callback if distributed.is_main() else None  # rank 0 alone reports
        self.world = distributed.world_size()
        self.start = len(history.epochs)
        self.t0, self.seen = time.perf_counter(), 0
        self.sums: torch.Tensor | None = None  # this epoch's running (loss, recon, KL, images), on the device
        self.epoch_t0 = self.t0

    def report(self, phase: str, *, epoch: int, step: int, means: list[float], model, optimizer, test=None) -> bool:
        """Call back with a ``Progress``; True if the callback asks to stop."""
        if self.callback is None:
            return False
        rate = self.seen * self.world / max(time.perf_counter() - self.t0, 1e-9)
        done = (epoch - self.start - 1) * self.steps + step
        left = (self.config.epochs - self.start) * self.steps - done
        p = Progress(
            phase=phase,
            epoch=epoch,
            epochs=self.config.epochs,
            step=step,
            steps_per_epoch=self.steps,
            global_step=(epoch - 1) * self.steps + step,
            loss=means[0],
            recon=means[1],
            kl=means[2],
            samples_per_s=rate,
            eta_s=left * self.bs * self.world / max(rate, 1e-9),
            test=test,
            model=model,
            optimizer=optimizer,
        )
        return bool(self.callback(p))


def _means(sums: torch.Tensor) -> tuple[list[float], float]:
    """Running sums (loss, recon, KL, images), reduced over ranks -> ([loss, recon, KL] per image, images).

    A sync point: every rank calls it at the same step."""
    stats = distributed.all_reduce(sums.clone())  # a NaN on any rank reaches every rank
    return (stats[:3] / stats[3].clamp(min=1)).tolist(), float(stats[3])


def _epoch_generators(config: TrainConfig, epoch: int, device: torch.device) -> tuple[torch.Generator, torch.Generator]:
    """The epoch's shuffle generator (the same on every rank) and its noise generator (its own per rank).

    Seeded from (seed, epoch): a resumed run draws what an uninterrupted one would."""
    base = config.seed * 100_003 + epoch
    shuffle = torch.Generator(device=device).manual_seed(base)
    noise = torch.Generator(device=device).manual_seed(base * 1_000 + distributed.rank() + 1)
    return shuffle, noise


def fit(
    model: VAE,
    data: Dataset,
    config: TrainConfig,
    callback: ProgressCallback | None = None,
    *,
    optimizer_state: dict[str, Any] | None = None,
    history: History | None = None,
) -> History:
    """Train ``model`` on ``data`` with Adam; return the history.

    Resumes after ``len(history.epochs)`` epochs when given a history (and optimizer state),
    so a resumed run sees the same shuffles and noise as an uninterrupted one: each epoch
    draws from generators seeded by (seed, epoch); the global RNG is never used. The callback
    may return True to stop after the current step. A non-finite loss stops training with
    ``history.error`` set and the weights of the last finished epoch restored.

    Under torchrun (an initialised process group) each rank trains on its shard with DDP;
    metrics are reduced over ranks, and only rank 0 calls ``callback``.
    """
    history = history or History()
    device = resolve_device(config.device)
    model.to(device).train()
    optimizer = _adam(model, config.lr, optimizer_state)
    batches = _Batches(data, config, device)
    step_fn = _step_function(model, config, device)
    test_x = model_input(data.test_x.to(device), model.config)  # one fixed draw when binarized
    run = _Run(config, history, batches.steps, batches.bs, callback)
    history.stopped, history.error = False, None
    good_state = _snapshot(model, optimizer)
    for epoch in range(run.start + 1, config.epochs + 1):
        if _train_epoch(model, optimizer, step_fn, batches, run, epoch, device, good_state) is not None:
            return _finish(history, optimizer)
        train_seconds = time.perf_counter() - run.epoch_t0
        means, images = _means(run.sums)
        test = test_metrics(model, test_x, batch_size=config.eval_batch_size)
        history.epochs.append(
            {
                "epoch": epoch,
                "loss": means[0],
                "recon": means[1],
                "kl": means[2],
                "test_elbo": test["elbo"],
                "test_recon": test["recon"],
                "test_kl": test["kl"],
                "seconds": time.perf_counter() - run.epoch_t0,  # the whole epoch, test evaluation included
                "train_seconds": train_seconds,  # the training steps only
                "samples_per_s": images / train_seconds,  # training throughput, all ranks
            }
        )
        good_state = _snapshot(model, optimizer)
        ask = run.report(
            "epoch", epoch=epoch, step=batches.steps, means=means, model=model, optimizer=optimizer, test=test
        )
        if _agree_to_stop(ask, device):
            history.stopped = epoch < config.epochs
            return _finish(history, optimizer)
    return _finish(history, optimizer)


def _train_epoch(model, optimizer, step_fn, batches: _Batches, run: _Run, epoch: int, device, good_state) -> str | None:
    """One epoch of steps; None when it ran to its end, else why it stopped ("stopped", "diverged")."""
    config, history = run.config, run.history
    shuffle, noise = _epoch_generators(config, epoch, device)
    epoch_batches = batches.epoch(epoch, shuffle)
    # Running sums on the device (loss, recon, KL, images), read back only every log_every
    # steps: no host sync per step on a GPU. A non-finite loss leaves the sums non-finite.
    run.sums = torch.zeros(4, device=device)
    one = torch.ones((), device=device)
    run.epoch_t0 = time.perf_counter()
    try:
        warming = config.kl_warmup > 0 and epoch <= config.kl_warmup
        objective = step_fn.objective
        objective.warming = warming
        for step, (xb, weight, rows, bad) in enumerate(epoch_batches, start=1):
            if warming:
                objective.warmup.fill_(warmup_weight(config, epoch, step, batches.steps))
            loss, recon, kl = step_fn(model_input(xb, model.config, noise), weight, noise)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                run.sums += torch.stack([loss.float(), recon.float(), kl.float(), one]) * rows
            run.seen += rows
            if bad:
                history.skipped.extend(batches.stream.path(i) for i in bad)
            if step % config.log_every and step != batches.steps:
                continue
            means, _ = _means(run.sums)
            if not math.isfinite(means[0]):  # restore the last epoch's state: NaN steps have moved Adam
                model.load_state_dict(good_state[0])
                optimizer.load_state_dict(good_state[1])
                history.error = (
                    f"the loss became non-finite (NaN or infinite) in epoch {epoch}, by step {step}: "
                    f"training stopped and the weights of epoch {epoch - 1} were kept "
                    f"(try a smaller learning rate than {config.lr})"
                )
                return "diverged"
            global_step = (epoch - 1) * batches.steps + step
            history.steps.append(
                {"epoch": epoch, "step": global_step, "loss": means[0], "recon": means[1], "kl": means[2]}
            )
            ask = run.report("step", epoch=epoch, step=step, means=means, model=model, optimizer=optimizer)
            if _agree_to_stop(ask, device):
                history.stopped = True
                return "stopped"
    finally:
        epoch_batches.close()
    return None


def _agree_to_stop(asked: bool, device: torch.device) -> bool:
    """Rank 0's callback decides for every rank (a lone rank stopping would hang the others)."""
    if distributed.world_size() == 1:
        return asked
    return bool(distributed.broadcast(torch.tensor([float(asked)], device=device)).item())


def _adam(model: VAE, lr: float, state: dict[str, Any] | None = None) -> torch.optim.Adam:
    """Adam, with the fused (single-kernel) update where the device has one.

    The same update as the default per-parameter loop (several times faster on CPU). A loaded
    state keeps its moments and step counts but runs fused here whatever it was saved with.
    """
    params = list(model.parameters())
    fused = all(p.is_floating_point() for p in params) and all(
        p.device.type in ("cpu", "cuda", "xpu", "mps") for p in params
    )
    optimizer = adam(params, lr=lr, fused=fused or None)
    if state is not None:
        optimizer.load_state_dict(state)
        for group in optimizer.param_groups:
            group["fused"] = fused or None
            if fused:
                group["foreach"] = None
                for p in group["params"]:
                    p_state = optimizer.state.get(p)
                    if p_state and torch.is_tensor(p_state.get("step")):
                        p_state["step"] = p_state["step"].to(dtype=torch.float32, device=p.device)
    return optimizer


def _snapshot(model: VAE, optimizer: torch.optim.Optimizer) -> tuple[dict[str, Any], dict[str, Any]]:
    """Copies of the weights and Adam's state: what a diverged run falls back to."""
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return weights, copy.deepcopy(optimizer.state_dict())


def _finish(history: History, optimizer: torch.optim.Optimizer) -> History:
    history.skipped = distributed.union(history.skipped)  # every rank gets here at the same step
    history.optimizer_state = optimizer.state_dict()
    return history
