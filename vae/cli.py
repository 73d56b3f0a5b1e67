"""The command lines, and their one entry: ``python -m vae.train`` (``train_main``) and
``python -m vae.evaluate`` (``evaluate_main``). vae/train.py and vae/evaluate.py hand over to them
before defining anything, so neither module is run twice (as ``__main__`` and as itself). Both call
the engine (``run.run_training``, ``evaluate``) and print; nothing else calls them."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import torch

from . import distributed
from .checkpoint import CheckpointError, InUseError, load_checkpoint, release, reserve, save
from .config import ConfigError, ModelConfig, TrainConfig, field_type, parse_ints
from .data import DataError, load_dataset
from .distributed import env_rank
from .evaluate import ACTIVE_UNIT_NATS, evaluate
from .meta import checkpoint_dir
from .run import IWAE_K, IWAE_N, Ready, RunResult, RunSpec, run_training
from .train import Progress, TrainingError, resolve_device


class ArgParser(argparse.ArgumentParser):
    """argparse that reports a bad flag or value in one line, without the usage block."""

    def error(self, message: str) -> NoReturn:
        if env_rank() == 0:  # under torchrun every process parses: one says it
            print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def image_count(text: str) -> int | None:
    """'1000' -> 1000, 'all' -> None (every test image), for --iwae-n."""
    if text.strip().lower() == "all":
        return None
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number of images nor 'all'") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give at least 1 image, or 'all'")
    return n


def int_list(text: str) -> tuple[int, ...]:
    """'512,256' -> (512, 256), for --hidden."""
    try:
        return parse_ints(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


# --------------------------------------------------------------------------- python -m vae.train


def default_out(dataset: str, cfg: ModelConfig) -> Path:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(dataset.removeprefix("folder:")).name or "folder").strip("-")
    return checkpoint_dir() / f"{stem}-{cfg.kind}-{cfg.arch}-z{cfg.latent_dim}.safetensors"


def add_config_flags(parser: Any, cls: type) -> None:
    """One flag for each field of ``cls`` whose schema names one (``vae.config.option``): its default,
    help, choices and type come from there; a boolean is a ``store_true`` switch."""
    for f in dataclasses.fields(cls):
        m = f.metadata
        if "flag" not in m:
            continue
        tp, _ = field_type(cls, f.name)
        kw: dict[str, Any] = {"default": f.default}
        if m.get("help"):
            kw["help"] = m["help"]
        if tp is bool:
            kw["action"] = "store_true"
        else:
            kw.update({k: m[k] for k in ("choices", "metavar") if k in m})
            if tp in (int, float):
                kw["type"] = tp
        parser.add_argument(m["flag"], **kw)


def config_values(cls: type, args: Any) -> dict[str, Any]:
    """The parsed values of ``cls``'s flags (see ``add_config_flags``), by field name."""
    return {
        f.name: getattr(args, f.metadata["flag"].lstrip("-").replace("-", "_"))
        for f in dataclasses.fields(cls)
        if "flag" in f.metadata
    }


def build_parser() -> ArgParser:
    """The flags of ``python -m vae.train``: one per flagged config field, and the run's own."""
    p = ArgParser(prog="python -m vae.train", description="Train a VAE (or an AE) and save a checkpoint.")
    model = p.add_argument_group("model")
    add_config_flags(model, ModelConfig)
    model.add_argument(
        "--hidden",
        type=int_list,
        default=None,
        help="layer widths (mlp, default 400) or conv channels (conv, default 32,64), e.g. 512,256",
    )
    model.add_argument("--image-size", type=int, default=None, help="image side for folder data (default 32)")
    model.add_argument(
        "--channels", type=int, choices=(1, 3), default=None, help="1 grey (default) or 3 RGB (folder data)"
    )
    add_config_flags(p.add_argument_group("training"), TrainConfig)
    run = p.add_argument_group("run")
    run.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch (per process)")
    run.add_argument(
        "--out", default=None, help="checkpoint path (default checkpoints/DATASET-KIND-ARCH-zD.safetensors)"
    )
    run.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    run.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    run.add_argument("--iwae-k", type=int, default=IWAE_K, help="importance samples for the final test IWAE (0: skip)")
    run.add_argument(
        "--iwae-n",
        type=image_count,
        default=IWAE_N,
        metavar="N|all",
        help=f"test images the final IWAE covers (recorded as iwae_n): the first N (default {IWAE_N:,}), or "
        "'all' for the whole test set (MNIST's 10,000: ten times the default's cost, with k=100 about as "
        "long as 3 epochs of training). The final ELBO always covers the whole test set",
    )
    run.add_argument(
        "--no-optimizer-state",
        action="store_true",
        help="leave Adam's state out of the checkpoint (3x smaller; --resume then restarts Adam)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


class UsageError(ValueError):
    """Flags that do not go together, found after parsing (exit status 2, like argparse's)."""


def train_main(argv: list[str] | None = None) -> int:
    """``python -m vae.train``; under ``torchrun`` every process runs it, and rank 0 alone prints and writes."""
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
    """Build the run from the flags (rank 0 checks the files), then train it."""
    train_cfg = TrainConfig(**config_values(TrainConfig, args))
    out = Path(args.out) if args.out else None
    model_cfg = None
    if args.resume:

        def check_resume() -> None:
            if out is None or not out.exists():
                raise UsageError("--resume needs --out pointing at an existing checkpoint")

        distributed.decide(check_resume)
    else:
        # image_shape is a stand-in until the data are loaded (run_training takes theirs).
        model_cfg = ModelConfig(
            **config_values(ModelConfig, args),
            hidden=args.hidden or ((32, 64) if args.arch == "conv" else (400,)),
        )
        out = out or default_out(args.dataset, model_cfg)
    assert out is not None
    spec = RunSpec(
        out,
        train_cfg,
        model_cfg,
        resume=args.resume,
        image_size=args.image_size,
        channels=args.channels,
        iwae_k=args.iwae_k,
        iwae_n=args.iwae_n,
        keep_optimizer=not args.no_optimizer_state,
    )
    return _train_and_save(args, spec)


class _Report:
    """Training progress for a person or a log file: a progress bar when stderr is a terminal; else
    no carriage returns, only a plain line at most every ``LOG_SECONDS`` within an epoch (the epoch
    lines themselves go to stdout either way)."""

    LOG_SECONDS = 30.0

    def __init__(self, total: int, initial: int, quiet: bool) -> None:
        self.bar = None
        self.lines = not quiet and not sys.stderr.isatty()
        self.last = time.monotonic()
        if not quiet and not self.lines:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, file=sys.stderr)

    def step(self, p: Progress) -> None:
        if self.bar is not None:
            self.bar.update(p.global_step - self.bar.n)
            self.bar.set_description(f"epoch {p.epoch}/{p.epochs}")
            self.bar.set_postfix(
                loss=f"{p.loss:.2f}", recon=f"{p.recon:.2f}", kl=f"{p.kl:.2f}", img_s=f"{p.samples_per_s:.0f}"
            )
        elif self.lines and p.phase == "step" and time.monotonic() - self.last >= self.LOG_SECONDS:
            self.last = time.monotonic()
            print(
                f"epoch {p.epoch}/{p.epochs} step {p.step}/{p.steps_per_epoch}: loss {p.loss:.2f}, "
                f"{p.samples_per_s:,.0f} images/s, {p.eta_s:,.0f} s to go",
                file=sys.stderr,
                flush=True,
            )

    def write(self, line: str) -> None:
        """A line on stdout that the bar, if any, redraws below."""
        (self.bar.write if self.bar is not None else print)(line)
        self.last = time.monotonic()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _Session:
    """The command line's side of one run (every rank has one; rank 0 alone prints): its messages,
    progress bar and Ctrl-C, and the claim on ``out``."""

    def __init__(self, args: Any, spec: RunSpec) -> None:
        self.args, self.spec = args, spec
        self.main = distributed.is_main()
        self.stop_asked = False
        self.reserved = False  # this run holds out's lock
        self.started = False  # training began: Ctrl-C is ours
        self.report: _Report | None = None
        self.ready: Ready | None = None
        self.previous_sigint: Any = None

    @property
    def score(self) -> str:
        """What the test score is called: an AE has no KL, so no bound."""
        return "log p(x|z)" if self.ready is not None and self.ready.model.deterministic else "ELBO"

    def on_ready(self, r: Ready) -> None:
        """The data are loaded and the model built: claim ``out``, say what runs, take over Ctrl-C."""
        out = self.spec.out

        def check_new() -> None:
            if out.exists() and not self.args.overwrite:
                raise UsageError(f"{out} exists: pass --overwrite to replace it, or --resume to continue it")

        if not self.spec.resume:
            distributed.decide(check_new)
        if self.main:
            if self.spec.resume:
                print(
                    f"resuming {out} at epoch {len(r.history.epochs) + 1} of {r.train_config.epochs}"
                    + ("" if r.optimizer_state else " (no optimizer state saved: Adam restarts)")
                )
            for line in r.data.skipped:
                print(f"skipped {line}", file=sys.stderr)
        distributed.decide(lambda: reserve(out))
        self.reserved, self.ready = True, r
        per_rank = r.data.n_train // distributed.world_size()
        steps = per_rank // max(1, min(r.train_config.batch_size, per_rank))
        quiet = self.args.quiet or not self.main
        self.report = _Report(r.train_config.epochs * steps, len(r.history.epochs) * steps, quiet=quiet)
        # Rank 0 owns Ctrl-C and passes the stop on at the next sync point; the other ranks ignore it.
        self.previous_sigint = signal.signal(signal.SIGINT, self.on_sigint if self.main else signal.SIG_IGN)
        self.started = True

    def on_sigint(self, signum: int, frame: Any) -> None:
        """First Ctrl-C: finish the step and save; second: quit now."""
        if self.stop_asked:
            raise KeyboardInterrupt
        self.stop_asked = True
        print("\nstopping after this step and saving (Ctrl-C again to quit without saving)", file=sys.stderr)

    def on_progress(self, p: Progress) -> bool:
        """fit's callback (rank 0), after the epoch's checkpoint is written: the bar and the epoch line."""
        assert self.report is not None
        self.report.step(p)
        if p.phase == "epoch":
            self.report.write(
                f"epoch {p.epoch}/{p.epochs}: train loss {p.loss:.2f}, test {self.score} {p.test['elbo']:.2f} "
                f"(recon {p.test['recon']:.2f}, KL {p.test['kl']:.2f}) nats/image"
            )
        return self.stop_asked

    def close(self) -> None:
        if self.started:
            signal.signal(signal.SIGINT, self.previous_sigint)
        if self.report is not None:
            self.report.close()
        if self.reserved and self.main:
            release(self.spec.out)


def _train_and_save(args: Any, spec: RunSpec) -> int:
    """Run ``spec`` with the command line's messages; the exit status."""
    session = _Session(args, spec)
    out = spec.out
    try:
        result = run_training(spec, session.on_progress, on_ready=session.on_ready)
    except KeyboardInterrupt:
        if not session.started:
            print("\nquit", file=sys.stderr)
        else:
            print(f"\nquit without saving; {out} holds the last finished epoch", file=sys.stderr)
        return 130
    finally:
        session.close()
    history = result.history
    if result.already_done:
        if session.main:
            print(f"{out} already has {len(history.epochs)} epochs; pass a larger --epochs to go on.")
        return 0
    if not session.main:
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
    assert result.metrics is not None and session.ready is not None
    print(_final_line(result, session.score, session.ready.model_config.latent_dim, out))
    return 0


def _final_line(result: RunResult, score: str, latent_dim: int, out: Path) -> str:
    """The run's last line: where it saved, and the test metrics."""
    metrics = result.metrics or {}
    iw = ""
    if metrics["iwae"] is not None:
        iw = f", IWAE(k={metrics['iwae_k']}) {metrics['iwae']:.2f}"
        if metrics["iwae_n"] < metrics["n"]:
            iw += f" on the first {metrics['iwae_n']:,} of {metrics['n']:,} test images (--iwae-n all: the whole set)"
    au = f", active units {metrics['active_units']}/{latent_dim}" if metrics["active_units"] is not None else ""
    return (
        f"{'stopped early; ' if result.history.stopped else ''}saved {out}: "
        f"test {score} {metrics['elbo']:.2f} nats/image{iw}{au}; evaluated in {result.eval_seconds:.1f} s"
    )


# --------------------------------------------------------------------------- python -m vae.evaluate


def evaluate_main(argv: list[str] | None = None) -> int:
    """``python -m vae.evaluate``: a checkpoint's test metrics, as text or one JSON object."""
    p = ArgParser(prog="python -m vae.evaluate", description="Evaluate a checkpoint on its test split.")
    p.add_argument("checkpoint", help="a .safetensors checkpoint")
    p.add_argument("--dataset", help="data set to evaluate on (default: the checkpoint's)")
    p.add_argument("--data-dir", default=None, help="folder holding MNIST/raw etc. (default ./data or $VAE_DATA_DIR)")
    p.add_argument("--iwae-k", type=int, default=5000, help="importance samples for the IWAE bound (0: skip)")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N test images")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument(
        "--binarize",
        choices=("auto", "yes", "no"),
        default="auto",
        help="score a fixed binarization of the test images (auto: if the model trained binarized)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--save-iwae",
        action="store_true",
        help="record the IWAE figure (iwae, iwae_k, iwae_n) in the checkpoint's metrics, for its model card",
    )
    args = p.parse_args(argv)
    if args.iwae_k < 0 or (args.limit is not None and args.limit < 1) or args.batch_size < 1:
        p.error("--iwae-k must be >= 0, --limit and --batch-size >= 1")
    try:
        ckpt = load_checkpoint(args.checkpoint, device=args.device)
        name = args.dataset or ckpt.dataset.get("name") or (ckpt.train.dataset if ckpt.train else None)
        if not name:
            raise DataError("the checkpoint does not name its data set: pass --dataset")
        c, h, _ = ckpt.config.image_shape
        # Only the test split is scored: MNIST without its files is the real test set shipped in vae/assets.
        data = load_dataset(
            name,
            data_dir=args.data_dir or (ckpt.train.data_dir if ckpt.train else None),
            image_size=h,
            channels=c,
            need_train=False,
        )
        if data.image_shape != ckpt.config.image_shape:
            raise DataError(f"{name} images are {data.image_shape}, the model needs {ckpt.config.image_shape}")
    except (CheckpointError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if data.note:
        print(f"note: {data.note}", file=sys.stderr)
    x = data.test_x[: args.limit] if args.limit else data.test_x
    if args.binarize == "yes" or (args.binarize == "auto" and ckpt.config.binarize):
        x = torch.bernoulli(x, generator=torch.Generator().manual_seed(args.seed))
    t0 = time.time()
    show = None if args.json else (lambda i, n: print(f"\r{i}/{n} images", end="", file=sys.stderr, flush=True))
    res = evaluate(ckpt.model, x, iwae_k=args.iwae_k, batch_size=args.batch_size, seed=args.seed, progress=show)
    res["seconds"] = round(time.time() - t0, 2)
    if args.save_iwae and res["iwae"] is not None:
        try:
            _record_iwae(Path(args.checkpoint), res)
        except (CheckpointError, InUseError, OSError) as e:
            print(f"error: the IWAE figure was not recorded: {e}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(res))
    else:
        print(file=sys.stderr)
        source = " (the copy shipped in vae/assets)" if data.note else ""
        print(f"{args.checkpoint}: {res['n']} test images of {name}{source}, nats per image")
        print(f"  ELBO {res['elbo']:.2f} = recon {res['recon']:.2f} - KL {res['kl']:.2f}")
        if res["iwae"] is not None:
            print(f"  IWAE bound on log p(x), k={res['iwae_k']}: {res['iwae']:.2f}")
        if res["active_units"] is not None:
            print(f"  active units (KL > {ACTIVE_UNIT_NATS} nats): {res['active_units']} of {ckpt.config.latent_dim}")
    return 0


def _record_iwae(path: Path, res: dict[str, Any]) -> None:
    """Rewrite ``path`` (atomically, holding its lock) with the measured IWAE in its metrics; the rest stays."""
    reserve(path)
    try:
        ckpt = load_checkpoint(path)
        metrics = {**ckpt.metrics, **{k: res[k] for k in ("iwae", "iwae_k", "iwae_n")}}
        save(
            path,
            ckpt.model,
            train=ckpt.train,
            dataset=ckpt.dataset,
            history=ckpt.history,
            metrics=metrics,
            optimizer=ckpt.optimizer,
        )
    finally:
        release(path)
