"""Training: one ``fit`` function for the CLI and the app's Train page.

CLI: ``python -m vae.train --dataset moons --kind vae --arch mlp --hidden 400 --latent-dim 20
--epochs 10 --out checkpoints/NAME.safetensors`` (``--help`` lists every flag).
"""

from __future__ import annotations

import copy
import math
import re
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

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

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "steps": self.steps, "stopped": self.stopped, "error": self.error}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> History:
        d = d or {}
        return cls(list(d.get("epochs", [])), list(d.get("steps", [])), bool(d.get("stopped")), d.get("error"))


def resolve_device(name: str = "auto") -> torch.device:
    """auto -> CUDA if available, then Apple's MPS, then CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError("--device cuda was asked for, but no CUDA GPU is available")
    return torch.device(name)


@torch.no_grad()
def test_metrics(model: VAE, x: torch.Tensor, batch_size: int = 1000) -> dict[str, float]:
    """Test-split ELBO, recon and KL (one z per image), nats per image."""
    model.eval()
    sums = torch.zeros(3)
    for i in range(0, len(x), batch_size):
        t = elbo_terms(model, x[i : i + batch_size], n_samples=1)
        sums += torch.stack([t.elbo.sum(), t.recon.sum(), t.kl.sum()]).cpu()
    model.train()
    elbo, recon, kl = (sums / len(x)).tolist()
    return {"elbo": elbo, "recon": recon, "kl": kl}


def fit(
    model: VAE,
    data: Dataset,
    config: TrainConfig,
    callback: ProgressCallback | None = None,
    *,
    optimizer_state: dict[str, Any] | None = None,
    history: History | None = None,
) -> History:
    """Train ``model`` on ``data.train_x`` with Adam; return the history.

    Resumes after ``len(history.epochs)`` epochs when given a history (and optimizer state),
    so a resumed run sees the same shuffles and noise as an uninterrupted one: each epoch
    reseeds from (seed, epoch). The callback may return True to stop after the current step.
    A non-finite loss stops training with ``history.error`` set and the weights of the last
    finished epoch restored.
    """
    history = history or History()
    device = resolve_device(config.device)
    model.to(device).train()
    optimizer = _adam(model, config.lr, optimizer_state)
    cfg = model.config
    train_x = data.train_x.to(device)
    # Dynamic binarization (as in the IWAE paper): every batch is a fresh Bernoulli draw of the
    # grey images, which the encoder sees and the decoder scores; the test set is one fixed draw.
    test_x = binarized(data.test_x.to(device)) if cfg.binarize else data.test_x.to(device)
    n = len(train_x)
    bs = min(config.batch_size, n)
    steps = n // bs  # drop the ragged last batch: every step sees bs images
    start = len(history.epochs)
    history.stopped, history.error = False, None
    good_state = _snapshot(model, optimizer)
    t_start, seen = time.perf_counter(), 0
    total_steps = (config.epochs - start) * steps

    for epoch in range(start + 1, config.epochs + 1):
        torch.manual_seed(config.seed * 100_003 + epoch)
        perm = torch.randperm(n, device=device)
        sums = torch.zeros(3, device=device)
        t_epoch = time.perf_counter()
        for step in range(1, steps + 1):
            xb = train_x[perm[(step - 1) * bs : step * bs]]
            if cfg.binarize:
                xb = torch.bernoulli(xb)
            t = elbo_terms(model, xb)
            if not math.isfinite(t.loss.item()):  # before the step: Adam's moments stay finite
                model.load_state_dict(good_state[0])
                optimizer.load_state_dict(good_state[1])
                history.error = (
                    f"the loss became {t.loss.item()} at epoch {epoch}, step {step}: training stopped and the "
                    f"weights of epoch {epoch - 1} were kept (try a smaller learning rate than {config.lr})"
                )
                return _finish(history, optimizer)
            optimizer.zero_grad(set_to_none=True)
            t.loss.backward()
            optimizer.step()
            with torch.no_grad():
                sums += torch.stack([t.loss, t.recon.mean(), t.kl.mean()])
            seen += bs
            if callback and (step % config.log_every == 0 or step == steps):
                loss, recon, kl = (sums / step).tolist()
                elapsed = time.perf_counter() - t_start
                rate = seen / max(elapsed, 1e-9)
                done = (epoch - start - 1) * steps + step
                history.steps.append(
                    {"epoch": epoch, "step": (epoch - 1) * steps + step, "loss": loss, "recon": recon, "kl": kl}
                )
                p = Progress(
                    "step",
                    epoch,
                    config.epochs,
                    step,
                    steps,
                    (epoch - 1) * steps + step,
                    loss,
                    recon,
                    kl,
                    rate,
                    (total_steps - done) * bs / rate,
                    model=model,
                    optimizer=optimizer,
                )
                if callback(p):
                    history.stopped = True
                    return _finish(history, optimizer)
        train_seconds = time.perf_counter() - t_epoch
        loss, recon, kl = (sums / steps).tolist()
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
                "samples_per_s": steps * bs / train_seconds,  # training throughput
            }
        )
        good_state = _snapshot(model, optimizer)
        if callback:
            elapsed = time.perf_counter() - t_start
            rate = seen / max(elapsed, 1e-9)
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
                (config.epochs - epoch) * steps * bs / rate,
                test=test,
                model=model,
                optimizer=optimizer,
            )
            if callback(p):
                history.stopped = epoch < config.epochs
                return _finish(history, optimizer)
    return _finish(history, optimizer)


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
    p.add_argument("--channels", type=int, choices=(1, 3), default=1, help="1 grey or 3 RGB (folder data)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data-dir", default=None, help="folder holding MNIST/raw etc. (default ./data or $VAE_DATA_DIR)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch")
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


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import CheckpointError, load_checkpoint
    from .data import DataError, load_dataset

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be at least 1")
        torch.set_num_threads(args.threads)
    try:
        train_cfg = TrainConfig(
            dataset=args.dataset,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            device=args.device,
            data_dir=args.data_dir,
        )
        hidden = args.hidden or ((32, 64) if args.arch == "conv" else (400,))
        history, optimizer_state = History(), None
        out = Path(args.out) if args.out else None
        if args.resume:
            if out is None or not out.exists():
                parser.error("--resume needs --out pointing at an existing checkpoint")
            ckpt = load_checkpoint(out)
            model, model_cfg = ckpt.model, ckpt.config
            history = History.from_dict(ckpt.history)
            optimizer_state = ckpt.optimizer
            if ckpt.train is not None:
                train_cfg = TrainConfig(**{**ckpt.train.to_dict(), "epochs": args.epochs, "device": args.device})
            if len(history.epochs) >= train_cfg.epochs:
                print(f"{out} already has {len(history.epochs)} epochs; pass a larger --epochs to go on.")
                return 0
            print(
                f"resuming {out} at epoch {len(history.epochs) + 1} of {train_cfg.epochs}"
                + ("" if optimizer_state else " (no optimizer state saved: Adam restarts)")
            )
        data = load_dataset(
            train_cfg.dataset, data_dir=train_cfg.data_dir, image_size=args.image_size, channels=args.channels, seed=0
        )
        if not args.resume:
            model_cfg = ModelConfig(
                kind=args.kind,
                arch=args.arch,
                image_shape=data.image_shape,
                hidden=hidden,
                latent_dim=args.latent_dim,
                beta=args.beta,
                likelihood=args.likelihood,
                sigma=args.sigma,
                learn_sigma=args.learn_sigma,
                mc_samples=args.mc_samples,
                binarize=args.binarize,
            )
            out = out or default_out(args.dataset, model_cfg)
            if out.exists() and not args.overwrite:
                parser.error(f"{out} exists: pass --overwrite to replace it, or --resume to continue it")
            torch.manual_seed(train_cfg.seed)
            model = build_model(model_cfg)
        elif data.image_shape != model_cfg.image_shape:
            raise DataError(
                f"the data's images are {data.image_shape}, the checkpoint's model needs {model_cfg.image_shape}"
            )
        if args.iwae_k < 0:
            parser.error("--iwae-k must be >= 0")
    except (ConfigError, DataError, CheckpointError, TrainingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for line in data.skipped:
        print(f"skipped {line}", file=sys.stderr)
    assert out is not None
    try:
        reserve(out)
    except InUseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    try:
        return _train_and_save(args, out, model, model_cfg, data, train_cfg, history, optimizer_state)
    finally:
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

    bar = None
    if not args.quiet:
        from tqdm import tqdm

        steps = len(data.train_x) // min(train_cfg.batch_size, len(data.train_x))
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

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        history = fit(model, data, train_cfg, on_progress, optimizer_state=optimizer_state, history=history)
    except KeyboardInterrupt:
        print(f"\nquit without saving; {out} holds the last finished epoch", file=sys.stderr)
        return 130
    except TrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, previous)
        if bar is not None:
            bar.close()
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
