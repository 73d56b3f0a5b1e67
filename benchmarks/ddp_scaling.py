"""DDP scaling: training samples/s of ``vae.train`` on 1 process against N processes (torchrun).

Each run is ``python -m torch.distributed.run --standalone --nproc_per_node=N -m vae.train ...``,
started from scratch (process start, data loading and any torch.compile included in the wall
time) and writing its checkpoint to a temporary folder; the figures come from the checkpoint's
history (``vae.meta.read_metadata``, no torch). The peer is the single process: the ratio is
N-process samples/s / 1-process samples/s, and the efficiency is ratio / N (1.0 = linear).
Runs alternate the process counts (1, 2, 2, 1, 1, 2 ...), so a machine that drifts slows all alike.

    python benchmarks/ddp_scaling.py                              # 1 vs 2 processes, CPU (gloo)
    python benchmarks/ddp_scaling.py --procs 1,2,4 --repeats 3    # medians of 3
    python benchmarks/ddp_scaling.py --same-global-batch          # batch 128 split over N processes
    python benchmarks/ddp_scaling.py --device cuda --precision bf16 --compile   # GPUs (NCCL)
    python benchmarks/ddp_scaling.py --dataset moons --epochs 1   # a quick check, no files needed

``--batch-size`` is per process under DDP (the global batch is batch x N) unless
``--same-global-batch``. Samples/s is the training throughput summed over all processes, taken
from the epochs after the first (the first includes warm-up); the test ELBO (nats/image) after
the last epoch shows that quality is unchanged. Dataset: MNIST when --data-dir holds MNIST/raw
(default ../shared/data), else moons; never downloads.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import BenchError, alternating, cpu_cores, cpu_name, print_table, run_limited, run_line  # noqa: E402

from vae.meta import CheckpointError, read_metadata  # noqa: E402

STDERR_TAIL = 25  # lines of a failed launch's stderr to print


# --------------------------------------------------------------------------- one launch


def parse_procs(text: str) -> list[int]:
    try:
        procs = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--procs wants comma-separated integers, e.g. 1,2,4 (got {text!r})") from None
    if not procs or procs[0] < 1:
        raise argparse.ArgumentTypeError(f"--procs wants process counts >= 1 (got {text!r})")
    return procs if procs[0] == 1 else [1, *procs]  # the single process is the peer: always run it


def launch_cmd(args, n: int, batch: int, threads: int, out: Path) -> list[str]:
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
        "-m", "vae.train",
        "--dataset", args.dataset,
        "--epochs", str(args.epochs),
        "--batch-size", str(batch),
        "--device", args.device,
        "--out", str(out),
        "--overwrite", "--quiet", "--iwae-k", "0", "--no-optimizer-state",
        "--seed", str(args.seed),
        "--threads", str(threads),
    ]  # fmt: skip
    if args.dataset != "moons":
        cmd += ["--data-dir", str(args.data_dir)]
    if args.precision:
        cmd += ["--precision", args.precision]
    if args.compile:
        cmd.append("--compile")
    if args.arch:
        cmd += ["--arch", args.arch]
    if args.hidden:
        cmd += ["--hidden", args.hidden]
    if args.latent_dim is not None:
        cmd += ["--latent-dim", str(args.latent_dim)]
    return cmd


def failure_tail(stderr: str, stdout: str) -> str:
    """The workers' last lines, without torchrun's own traceback (it hides the cause), plus its verdict."""
    lines = stderr.rstrip().splitlines()
    failed = [i for i, line in enumerate(lines) if "ChildFailedError" in line]
    verdict: list[str] = []
    if failed:
        starts = [i for i in range(failed[-1]) if lines[i].startswith("Traceback (most recent call last):")]
        if starts:
            verdict = [" ".join(x.split()) for x in lines[failed[-1] :] if x.strip().startswith(("rank", "exitcode"))]
            lines = lines[: starts[-1]]
    if not lines:
        lines = stdout.rstrip().splitlines()
    return "\n".join(lines[-STDERR_TAIL:] + (["torchrun: " + ", ".join(verdict)] if verdict else []))


def run_once(args, n: int, batch: int, threads: int, out: Path) -> dict:
    """One torchrun launch; its figures from the checkpoint it wrote."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    cmd = launch_cmd(args, n, batch, threads, out)
    t0 = time.perf_counter()
    returncode, stdout, stderr = run_limited(cmd, ROOT, env, args.timeout, f"{n}-process launch")
    wall = time.perf_counter() - t0
    if returncode != 0:
        print(f"--- last lines of the {n}-process launch's output (exit {returncode}):", file=sys.stderr)
        print(failure_tail(stderr, stdout) or "(no output)", file=sys.stderr)
        print("--- command: " + " ".join(cmd), file=sys.stderr)
        raise BenchError(f"the {n}-process launch of vae.train failed (exit {returncode}); see its output above")
    try:
        epochs = (read_metadata(out).get("history") or {}).get("epochs") or []
    except CheckpointError as e:
        raise BenchError(f"the {n}-process run left no readable checkpoint: {e}") from None
    if not epochs:
        raise BenchError(f"the {n}-process run's checkpoint has no epochs in its history")
    steady = epochs[1:] or epochs  # the first epoch includes warm-up (e.g. torch.compile)
    try:
        rates = [e["samples_per_s"] for e in steady]
        return {
            "samples_per_s": max(rates) if args.epoch_stat == "best" else statistics.median(rates),
            "train_s": sum(e["train_seconds"] for e in epochs),
            "wall_s": wall,
            "test_elbo": epochs[-1]["test_elbo"],
            "epochs": len(epochs),
        }
    except (KeyError, TypeError) as e:
        raise BenchError(f"the {n}-process run's checkpoint history lacks {e} in its epochs") from None


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--procs", type=parse_procs, default=[1, 2], help="process counts, e.g. 1,2,4 (1 always runs)")
    p.add_argument("--dataset", default=None, help="default: mnist if --data-dir holds MNIST/raw, else moons")
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data", help="holds MNIST/raw")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="cpu: gloo; cuda: NCCL, 1 GPU/process")
    p.add_argument("--epochs", type=int, default=2, help="epochs per run (samples/s from those after the first)")
    p.add_argument("--batch-size", type=int, default=128, help="per process (global = batch x N) unless below")
    p.add_argument("--same-global-batch", action="store_true", help="divide --batch-size by N: fixed global batch")
    p.add_argument("--threads", type=int, default=None, help="threads per process (default: max(1, cores // N))")
    p.add_argument("--repeats", type=int, default=1, help="rounds over --procs, order alternating; medians per N")
    p.add_argument("--epoch-stat", choices=("median", "best"), default="median", help="of the epochs after the first")
    p.add_argument("--precision", default=None, help="passed to vae.train, e.g. bf16 (default: the trainer's)")
    p.add_argument("--compile", action="store_true", help="pass --compile to vae.train")
    p.add_argument("--arch", default=None, choices=("mlp", "conv"), help="passed to vae.train")
    p.add_argument("--hidden", default=None, help="passed to vae.train, e.g. 512,256")
    p.add_argument("--latent-dim", type=int, default=None, help="passed to vae.train")
    p.add_argument("--seed", type=int, default=1, help="the same for every run")
    p.add_argument("--timeout", type=float, default=0, help="seconds per launch before it is stopped (0: none)")
    p.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be at least 1")
    if args.dataset is None:
        args.dataset = "mnist" if (args.data_dir / "MNIST" / "raw").is_dir() else "moons"

    import torch  # after argparse, so that --help is quick

    cores = cpu_cores()
    procs = list(args.procs)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            print("error: --device cuda, but torch sees no CUDA device", file=sys.stderr)
            return 1
        gpus = torch.cuda.device_count()
        skipped = [n for n in procs if n > gpus]
        if skipped:
            print(f"note: skipping {skipped} process(es): {gpus} GPU(s), one process per GPU")
        procs = [n for n in procs if n <= gpus]
        device_name, backend = f"{gpus} x {torch.cuda.get_device_name(0)}", "nccl"
    else:
        device_name, backend = cpu_name(), "gloo"
        over = [n for n in procs if n > cores]
        if over:
            print(f"note: {over} process(es) exceed the {cores} cores: the CPU is oversubscribed there")

    def threads_for(n: int) -> int:
        return args.threads if args.threads is not None else max(1, cores // n)

    def batch_for(n: int) -> int:
        return max(1, args.batch_size // n) if args.same_global_batch else args.batch_size

    if args.same_global_batch:
        uneven = [n for n in procs if args.batch_size % n or args.batch_size < n]
        mode = f"same global batch: {args.batch_size} split over N processes ({args.batch_size}/N per process)"
        if uneven:
            mode += f"; not divisible for N = {uneven}, rounded down per process"
    else:
        mode = f"per-process batch {args.batch_size}: the global batch grows with N ({args.batch_size} x N)"
    print(
        f"{cores} cores, torch {torch.__version__}, device {args.device} ({device_name}), backend {backend}; "
        f"{args.dataset}, {args.epochs} epoch(s) per run, {args.repeats} repeat(s); {mode}; "
        f"samples/s = {args.epoch_stat} of the epochs "
        f"{'after the first' if args.epochs > 1 else '(only one: warm-up included)'}",
        flush=True,
    )

    results: dict[int, list[dict]] = {n: [] for n in procs}
    try:
        with tempfile.TemporaryDirectory(prefix="ddp_scaling_") as tmp:
            for r, n in alternating(args.repeats, procs):
                out = run_once(args, n, batch_for(n), threads_for(n), Path(tmp) / f"n{n}-r{r}.safetensors")
                results[n].append(out)
                run_line(
                    r,
                    f"{n} process(es) x {threads_for(n)} thread(s), batch {batch_for(n)}/process: "
                    f"{out['samples_per_s']:9.0f} samples/s, wall {out['wall_s']:6.1f} s "
                    f"({out['train_s']:.1f} s training), test ELBO {out['test_elbo']:.2f} nats/image",
                )
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1

    rows = []
    base = statistics.median(o["samples_per_s"] for o in results[1])
    for n in procs:
        rate = statistics.median(o["samples_per_s"] for o in results[n])
        rows.append(
            (
                n,
                threads_for(n),
                batch_for(n) * n,
                rate,
                rate / base,
                rate / base / n,
                statistics.median(o["wall_s"] for o in results[n]),
                statistics.median(o["test_elbo"] for o in results[n]),
            )
        )
    head = ("procs", "threads/proc", "global batch", "samples/s", "ratio vs 1", "efficiency", "wall s", "test ELBO")
    cells = [
        (str(n), str(t), str(gb), f"{s:,.0f}", f"{ra:.2f}x", f"{ef:.0%}", f"{w:.1f}", f"{el:.2f}")
        for n, t, gb, s, ra, ef, w, el in rows
    ]
    med = f" (median of {args.repeats})" if args.repeats > 1 else ""
    print(f"results{med}; ratio = N-process samples/s / 1-process samples/s, efficiency = ratio / N:")
    print_table(head, cells, args.markdown)
    for n, _, _, _, ratio, eff, _, elbo in rows[1:]:
        print(
            f"{n} processes / 1 process: {ratio:.2f}x samples/s, efficiency {eff:.0%}; "
            f"test ELBO {elbo - rows[0][7]:+.2f} nats/image against the single process (higher is better)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
