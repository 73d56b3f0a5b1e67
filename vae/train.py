"""Training: one ``fit`` function for the CLI and the app's Train page.

CLI: ``python -m vae.train --dataset moons --kind vae --arch mlp --hidden 400 --latent-dim 20
--epochs 10 --out checkpoints/NAME.safetensors`` (``--help`` lists every flag).
"""

from __future__ import annotations

import copy
import math
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import distributed
from .config import ConfigError, ModelConfig, TrainConfig
from .data import Dataset
from .evaluate import binarized
from .models import VAE, build_model
from .objectives import elbo_terms
from .registry import InUseError, release, reserve


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


@torch.no_grad()
def _split_sums(model: VAE, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Sums of the ELBO, recon and KL over x, and its size: (4,) on the model's device."""
    sums = torch.zeros(4, device=model.device)
    for i in range(0, len(x), batch_size):
        t = elbo_terms(model, x[i : i + batch_size].to(model.device, non_blocking=True), n_samples=1)
        sums[:3] += torch.stack([t.elbo.sum(), t.recon.sum(), t.kl.sum()])
    sums[3] = len(x)
    return sums


def test_metrics(model: VAE, x: torch.Tensor, batch_size: int = 1000) -> dict[str, float]:
    """Test-split ELBO, recon and KL (one z per image), nats per image.

    Under DDP each rank scores its share of x and the sums are reduced, so every rank
    gets the metrics of the whole split.
    """
    model.eval()
    r, w = distributed.rank(), distributed.world_size()
    sums = distributed.all_reduce(_split_sums(model, x[r::w], batch_size))
    model.train()
    elbo, recon, kl = (sums[:3] / sums[3].clamp(min=1)).tolist()
    return {"elbo": elbo, "recon": recon, "kl": kl}


class _Objective(torch.nn.Module):
    """The training loss as a module, so DDP's gradient hooks and torch.compile see one forward.

    forward(x (B, C, H, W), weight (B,) or None) -> (loss, mean recon, mean KL); ``weight``
    zeroes rows a streamed batch could not read (the batch keeps its size on every rank).
    """

    def __init__(self, model: VAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, weight: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        t = elbo_terms(self.model, x)
        if weight is None:
            return t.loss, t.recon.mean(), t.kl.mean()
        total = weight.sum().clamp(min=1)
        per_image = -(t.recon - self.model.config.beta * t.kl)
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

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, int, list[int]]]:
        """This epoch's (x (bs, C, H, W) on the device, weight (bs,) or None, rows read, unreadable
        indices). The order is drawn here, at the call, from the RNG state the caller seeded."""
        if self.stream is None:
            # The same permutation on every rank, then a stride per rank: disjoint shares.
            perm = torch.randperm(self.per_rank * self.world, device=self.device)[self.rank :: self.world]
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
    fn: torch.nn.Module = _Objective(model)
    if distributed.world_size() > 1:
        from torch.nn.parallel import DistributedDataParallel

        # Wraps the objective, not the model: DDP hooks forward(), and the model's encode/decode
        # are plain methods. Parameters start from rank 0's copy.
        fn = DistributedDataParallel(fn, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        fn = torch.compile(fn)
    bf16 = config.precision == "bf16"

    def step(x: torch.Tensor, weight: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            return fn(x, weight)

    return step


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
    reseeds from (seed, epoch). The callback may return True to stop after the current step.
    A non-finite loss stops training with ``history.error`` set and the weights of the last
    finished epoch restored.

    Under torchrun (an initialised process group) each rank trains on its shard with DDP;
    metrics are reduced over ranks, and only rank 0 calls ``callback``.
    """
    history = history or History()
    device = resolve_device(config.device)
    model.to(device).train()
    optimizer = _adam(model, config.lr, optimizer_state)
    cfg = model.config
    main = distributed.is_main()
    world = distributed.world_size()
    batches = _Batches(data, config, device)
    step_fn = _step_function(model, config, device)
    # Dynamic binarization (as in the IWAE paper): every batch is a fresh Bernoulli draw of the
    # grey images, which the encoder sees and the decoder scores; the test set is one fixed draw.
    test_x = binarized(data.test_x.to(device)) if cfg.binarize else data.test_x.to(device)
    bs, steps = batches.bs, batches.steps
    start = len(history.epochs)
    history.stopped, history.error = False, None
    good_state = _snapshot(model, optimizer)
    t_start, seen = time.perf_counter(), 0
    total_steps = (config.epochs - start) * steps
    one = torch.ones((), device=device)

    for epoch in range(start + 1, config.epochs + 1):
        torch.manual_seed(config.seed * 100_003 + epoch)
        epoch_batches = batches.epoch(epoch)
        if world > 1:  # after the shared permutation: each rank draws its own noise
            torch.manual_seed((config.seed * 100_003 + epoch) * 1_000 + distributed.rank())
        # Running sums on the device (loss, recon, KL, images), read back only every log_every
        # steps: no host sync per step on a GPU. A non-finite loss leaves the sums non-finite.
        sums = torch.zeros(4, device=device)
        t_epoch = time.perf_counter()
        try:
            for step, (xb, weight, rows, bad) in enumerate(epoch_batches, start=1):
                if cfg.binarize:
                    xb = torch.bernoulli(xb)
                loss, recon, kl = step_fn(xb, weight)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                with torch.no_grad():
                    sums += torch.stack([loss.float(), recon.float(), kl.float(), one]) * rows
                seen += rows
                if bad:
                    history.skipped.extend(batches.stream.path(i) for i in bad)
                if step % config.log_every and step != steps:
                    continue
                # A sync point, at the same steps on every rank.
                stats = distributed.all_reduce(sums.clone())  # a NaN on any rank reaches every rank
                loss_m, recon_m, kl_m = (stats[:3] / stats[3].clamp(min=1)).tolist()
                if not math.isfinite(loss_m):  # restore the last epoch's state: NaN steps have moved Adam
                    model.load_state_dict(good_state[0])
                    optimizer.load_state_dict(good_state[1])
                    history.error = (
                        f"the loss became non-finite (NaN or infinite) in epoch {epoch}, by step {step}: "
                        f"training stopped and the weights of epoch {epoch - 1} were kept "
                        f"(try a smaller learning rate than {config.lr})"
                    )
                    return _finish(history, optimizer)
                global_step = (epoch - 1) * steps + step
                history.steps.append(
                    {"epoch": epoch, "step": global_step, "loss": loss_m, "recon": recon_m, "kl": kl_m}
                )
                ask_stop = False
                if callback and main:
                    elapsed = time.perf_counter() - t_start
                    rate = seen * world / max(elapsed, 1e-9)
                    done = (epoch - start - 1) * steps + step
                    p = Progress(
                        "step",
                        epoch,
                        config.epochs,
                        step,
                        steps,
                        global_step,
                        loss_m,
                        recon_m,
                        kl_m,
                        rate,
                        (total_steps - done) * bs * world / rate,
                        model=model,
                        optimizer=optimizer,
                    )
                    ask_stop = bool(callback(p))
                if _agree_to_stop(ask_stop, device):
                    history.stopped = True
                    return _finish(history, optimizer)
        finally:
            epoch_batches.close()
        train_seconds = time.perf_counter() - t_epoch
        stats = distributed.all_reduce(sums.clone())
        loss, recon, kl = (stats[:3] / stats[3].clamp(min=1)).tolist()
        test = test_metrics(model, test_x, batch_size=config.eval_batch_size)
        seconds = time.perf_counter() - t_epoch
        history.epochs.append(
            {
                "epoch": epoch,
                "loss": loss,
                "recon": recon,
                "kl": kl,
                "test_elbo": test["elbo"],
                "test_recon": test["recon"],
                "test_kl": test["kl"],
                "seconds": seconds,  # the whole epoch, test evaluation included
                "train_seconds": train_seconds,  # the training steps only
                "samples_per_s": float(stats[3]) / train_seconds,  # training throughput, all ranks
            }
        )
        good_state = _snapshot(model, optimizer)
        ask_stop = False
        if callback and main:
            elapsed = time.perf_counter() - t_start
            rate = seen * world / max(elapsed, 1e-9)
            p = Progress(
                "epoch",
                epoch,
                config.epochs,
                steps,
                steps,
                epoch * steps,
                loss,
                recon,
                kl,
                rate,
                (config.epochs - epoch) * steps * bs * world / rate,
                test=test,
                model=model,
                optimizer=optimizer,
            )
            ask_stop = bool(callback(p))
        if _agree_to_stop(ask_stop, device):
            history.stopped = epoch < config.epochs
            return _finish(history, optimizer)
    return _finish(history, optimizer)


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
    optimizer = torch.optim.Adam(params, lr=lr, fused=fused or None)
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


# --------------------------------------------------------------------------- CLI


def default_out(dataset: str, cfg: ModelConfig) -> Path:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(dataset.removeprefix("folder:")).name or "folder").strip("-")
    return Path("checkpoints") / f"{stem}-{cfg.kind}-{cfg.arch}-z{cfg.latent_dim}.safetensors"


def build_parser():
    from .cli import ArgParser, int_list

    p = ArgParser(prog="python -m vae.train", description="Train a VAE (or an AE) and save a checkpoint.")
    p.add_argument("--dataset", default="moons", help="moons | digits | mnist | fashion-mnist | folder:PATH")
    p.add_argument("--kind", choices=("vae", "ae"), default="vae")
    p.add_argument("--arch", choices=("mlp", "conv"), default="mlp")
    p.add_argument(
        "--hidden",
        type=int_list,
        default=None,
        help="layer widths (mlp, default 400) or conv channels (conv, default 32,64), e.g. 512,256",
    )
    p.add_argument("--latent-dim", type=int, default=20)
    p.add_argument("--epochs", type=int, default=10, help="total epochs (with --resume: up to this many)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--beta", type=float, default=1.0, help="weight of the KL term (beta-VAE)")
    p.add_argument("--likelihood", choices=("bernoulli", "gaussian"), default="bernoulli")
    p.add_argument("--sigma", type=float, default=0.1, help="Gaussian decoder's standard deviation")
    p.add_argument("--learn-sigma", action="store_true", help="learn the Gaussian decoder's sigma")
    p.add_argument("--mc-samples", type=int, default=1, help="L: Monte Carlo samples of z per image")
    p.add_argument("--binarize", action="store_true", help="dynamic binarization of the training images")
    p.add_argument("--image-size", type=int, default=None, help="image side for folder data (default 32)")
    p.add_argument("--channels", type=int, choices=(1, 3), default=None, help="1 grey (default) or 3 RGB (folder data)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data-dir", default=None, help="folder holding MNIST/raw etc. (default ./data or $VAE_DATA_DIR)")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU) | cpu | cuda | cuda:N | mps")
    p.add_argument(
        "--precision", choices=("fp32", "bf16"), default="fp32", help="bf16: bfloat16 autocast of the forward pass"
    )
    p.add_argument("--compile", action="store_true", help="torch.compile the training step (worth it on a GPU)")
    p.add_argument(
        "--memory-budget",
        type=float,
        default=None,
        metavar="MB",
        help="image folders whose decoded images exceed this stream from disk (default 2048 or $VAE_MEMORY_BUDGET_MB)",
    )
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers per process when streaming")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch (per process)")
    p.add_argument("--out", default=None, help="checkpoint path (default checkpoints/DATASET-KIND-ARCH-zD.safetensors)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--iwae-k", type=int, default=100, help="importance samples for the final test IWAE (0: skip)")
    p.add_argument(
        "--no-optimizer-state",
        action="store_true",
        help="leave Adam's state out of the checkpoint (3x smaller; --resume then restarts Adam)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


class UsageError(ValueError):
    """Flags that do not go together, found after parsing (exit status 2, like argparse's)."""


def main(argv: list[str] | None = None) -> int:
    """The CLI; under ``torchrun`` every process runs it, and rank 0 alone prints and writes."""
    from .checkpoint import CheckpointError
    from .data import DataError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    if args.iwae_k < 0:
        parser.error("--iwae-k must be >= 0")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
        distributed.start(device)
    except TrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # a rendezvous that fails: one line, not the launcher's traceback
        print(f"error: cannot join the process group ({e.__class__.__name__}: {e})", file=sys.stderr)
        return 1
    if args.precision == "bf16" and device.type == "cpu" and distributed.is_main():
        print(
            "note: --precision bf16 is meant for GPUs; CPUs without bfloat16 arithmetic emulate it "
            "(8x slower than fp32 on a 2-core AVX2 machine)",
            file=sys.stderr,
        )
    try:
        return _run(args)
    except UsageError as e:
        if distributed.is_main():
            print(f"{parser.prog}: error: {e} (see --help)", file=sys.stderr)
        return 2
    except (ConfigError, DataError, CheckpointError, TrainingError, InUseError) as e:
        if distributed.is_main():
            print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        distributed.stop()


def _run(args: Any) -> int:
    """Set up the run (rank 0 reads and claims the checkpoint file; every rank loads the data),
    then train. Every step that can fail does so on all ranks at once."""
    from .checkpoint import load_checkpoint
    from .data import DataError, load_dataset

    train_cfg = TrainConfig(
        dataset=args.dataset,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        data_dir=args.data_dir,
        precision=args.precision,
        compile=args.compile,
        memory_budget_mb=args.memory_budget,
        workers=args.workers,
    )
    out = Path(args.out) if args.out else None
    run_settings = {k: getattr(train_cfg, k) for k in ("epochs", "device", "precision", "compile", "workers")}
    loaded: dict[str, Any] = {}  # rank 0's resumed model

    def read_resume() -> dict[str, Any]:
        if out is None or not out.exists():
            raise UsageError("--resume needs --out pointing at an existing checkpoint")
        ckpt = load_checkpoint(out)
        loaded["model"] = ckpt.model
        cfg = train_cfg if ckpt.train is None else TrainConfig(**{**ckpt.train.to_dict(), **run_settings})
        return {"model": ckpt.config, "train": cfg, "history": ckpt.history, "optimizer": ckpt.optimizer}

    history, optimizer_state, model_cfg = History(), None, None
    if args.resume:
        plan = distributed.decide(read_resume)
        model_cfg, train_cfg, optimizer_state = plan["model"], plan["train"], plan["optimizer"]
        history = History.from_dict(plan["history"])
        if len(history.epochs) >= train_cfg.epochs:
            if distributed.is_main():
                print(f"{out} already has {len(history.epochs)} epochs; pass a larger --epochs to go on.")
            return 0
        if distributed.is_main():
            print(
                f"resuming {out} at epoch {len(history.epochs) + 1} of {train_cfg.epochs}"
                + ("" if optimizer_state else " (no optimizer state saved: Adam restarts)")
            )
    c, h, _ = model_cfg.image_shape if model_cfg else (None, None, None)
    data = distributed.everywhere(
        lambda: load_dataset(
            train_cfg.dataset,
            data_dir=train_cfg.data_dir,
            image_size=args.image_size or h,
            channels=args.channels or c or 1,
            seed=0,
            memory_budget_mb=train_cfg.memory_budget_mb,
        )
    )
    if model_cfg is None:
        model_cfg = ModelConfig(
            kind=args.kind,
            arch=args.arch,
            image_shape=data.image_shape,
            hidden=args.hidden or ((32, 64) if args.arch == "conv" else (400,)),
            latent_dim=args.latent_dim,
            beta=args.beta,
            likelihood=args.likelihood,
            sigma=args.sigma,
            learn_sigma=args.learn_sigma,
            mc_samples=args.mc_samples,
            binarize=args.binarize,
        )
        out = out or default_out(args.dataset, model_cfg)

        def check_new(path: Path = out) -> None:
            if path.exists() and not args.overwrite:
                raise UsageError(f"{path} exists: pass --overwrite to replace it, or --resume to continue it")

        distributed.decide(check_new)
        torch.manual_seed(train_cfg.seed)
        model = build_model(model_cfg)
    else:
        if data.image_shape != model_cfg.image_shape:
            raise DataError(
                f"the data's images are {data.image_shape}, the checkpoint's model needs {model_cfg.image_shape}"
            )
        # Other ranks start from any weights: DDP copies rank 0's when it wraps the model.
        model = loaded["model"] if distributed.is_main() else build_model(model_cfg)
    if distributed.is_main():
        for line in data.skipped:
            print(f"skipped {line}", file=sys.stderr)
    assert out is not None
    distributed.decide(lambda: reserve(out))
    try:
        return _train_and_save(args, out, model, model_cfg, data, train_cfg, history, optimizer_state)
    finally:
        if distributed.is_main():
            release(out)


def _train_and_save(
    args: Any,
    out: Path,
    model: VAE,
    model_cfg: ModelConfig,
    data: Dataset,
    train_cfg: TrainConfig,
    history: History,
    optimizer_state: dict[str, Any] | None,
) -> int:
    """The CLI's run once ``out`` is reserved: progress bar, Ctrl-C, per-epoch saves, final metrics."""
    from .checkpoint import save
    from .evaluate import evaluate

    stop = {"asked": False}
    score = "log p(x|z)" if model.deterministic else "ELBO"  # an AE has no KL, so no bound

    def on_sigint(signum, frame):  # first Ctrl-C: finish the step and save; second: quit now
        if stop["asked"]:
            raise KeyboardInterrupt
        stop["asked"] = True
        print("\nstopping after this step and saving (Ctrl-C again to quit without saving)", file=sys.stderr)

    main = distributed.is_main()
    bar = None
    if not args.quiet and main:
        from tqdm import tqdm

        per_rank = data.n_train // distributed.world_size()
        steps = per_rank // max(1, min(train_cfg.batch_size, per_rank))
        bar = tqdm(
            total=train_cfg.epochs * steps,
            initial=len(history.epochs) * steps,
            unit="step",
            dynamic_ncols=True,
            file=sys.stderr,
        )

    def save_now(model: VAE, optimizer: Any, metrics: dict | None = None) -> None:
        save(
            out,
            model,
            train=train_cfg,
            dataset=data.info(),
            history=history.to_dict(),
            metrics=metrics or {},
            optimizer=None if args.no_optimizer_state else optimizer,
        )

    def on_progress(p: Progress) -> bool:
        if bar is not None:
            bar.update(p.global_step - bar.n)
            bar.set_description(f"epoch {p.epoch}/{p.epochs}")
            bar.set_postfix(
                loss=f"{p.loss:.2f}", recon=f"{p.recon:.2f}", kl=f"{p.kl:.2f}", img_s=f"{p.samples_per_s:.0f}"
            )
        if p.phase == "epoch":
            msg = (
                f"epoch {p.epoch}/{p.epochs}: train loss {p.loss:.2f}, test {score} {p.test['elbo']:.2f} "
                f"(recon {p.test['recon']:.2f}, KL {p.test['kl']:.2f}) nats/image"
            )
            (bar.write if bar else print)(msg)
            save_now(p.model, p.optimizer)  # every epoch, atomically: a kill loses at most one epoch
        return stop["asked"]

    # Rank 0 owns Ctrl-C and passes the stop on at the next sync point; the other ranks ignore it.
    previous = signal.signal(signal.SIGINT, on_sigint if main else signal.SIG_IGN)
    try:
        history = fit(model, data, train_cfg, on_progress, optimizer_state=optimizer_state, history=history)
    except KeyboardInterrupt:
        print(f"\nquit without saving; {out} holds the last finished epoch", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
        if bar is not None:
            bar.close()
    if not main:  # rank 0 alone evaluates and writes the final checkpoint
        return 1 if history.error else 0
    if history.skipped:
        shown = ", ".join(history.skipped[:5]) + (", ..." if len(history.skipped) > 5 else "")
        print(f"skipped {len(history.skipped)} unreadable file(s) while training: {shown}", file=sys.stderr)
    if history.error:
        print(
            f"error: {history.error}; {out} keeps the last good epoch" if out.exists() else f"error: {history.error}",
            file=sys.stderr,
        )
        return 1
    model.cpu()
    x = data.test_x
    if model_cfg.binarize:
        x = binarized(x)
    metrics = evaluate(model, x, iwae_k=args.iwae_k)
    # Re-save with the final metrics (after a stop mid-epoch: the weights as they are now).
    save_now(model, history.optimizer_state, metrics)
    iw = f", IWAE(k={metrics['iwae_k']}) {metrics['iwae']:.2f}" if metrics["iwae"] is not None else ""
    au = (
        f", active units {metrics['active_units']}/{model_cfg.latent_dim}"
        if metrics["active_units"] is not None
        else ""
    )
    print(
        f"{'stopped early; ' if history.stopped else ''}saved {out}: "
        f"test {score} {metrics['elbo']:.2f} nats/image{iw}{au}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
