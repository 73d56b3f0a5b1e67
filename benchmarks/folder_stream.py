"""Streaming image folders: training from PNG files on disk against the same images held in memory.

An image folder whose decoded float32 images exceed the memory budget streams its train split
from disk (``vae.data.FolderImages`` through a ``DataLoader``, ``TrainConfig.workers`` worker
processes) instead of being decoded into one tensor up front. This writes N MNIST training
digits as 28x28 grey PNG files into a temporary folder (sub-folders 0..9 by label; removed at
the end) and trains the 784-400-20 MLP VAE on it in each mode: ``in-memory`` (the peer: budget
1e9 MB, everything decoded by ``load_folder``) and ``stream`` with each of ``--workers``
(budget 0). Runs alternate the modes (in-memory, stream 0, stream 2, stream 2, stream 0, ...).

    python benchmarks/folder_stream.py                       # N = 20,000, 2 epochs, workers 0 and 2
    python benchmarks/folder_stream.py --repeats 3           # medians of 3 alternated rounds
    python benchmarks/folder_stream.py --n 60000 --workers 0,1,2,4 --markdown

Each run is a fresh process (this script with a hidden ``--child MODE WORKERS``), so peak RSS
is per mode: ``ru_maxrss`` of the trainer (RUSAGE_SELF) and of its largest worker process
(RUSAGE_CHILDREN: the biggest one, not a sum; a forked worker's RSS also counts the trainer's
pages it shares copy-on-write). Linux carries a parent's peak RSS into a child's ``ru_maxrss``
across fork + exec, so this parent never imports torch and keeps only the N digits; its own
peak is printed to show that it stays below the trainers'. Samples/s count training only
(``history.epochs[i]["samples_per_s"]``), as the median of the epochs after the first (the
first includes starting the workers); load s is ``load_folder`` alone (in memory: every image;
streamed: the test split and a preview of the train split). Needs MNIST's raw files under
--data-dir (default ../shared/data, MNIST/raw); no download. The PNG files were just written,
so they come from the page cache: the cost measured is decoding, not the disk.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import BenchError, alternating, cpu_cores, cpu_name, print_table, run_limited, run_line  # beside this file

ROOT = Path(__file__).resolve().parents[1]
RESULT = "FOLDER_STREAM_RESULT "  # prefix of the child's one JSON line on stdout
IMAGE_SIZE = 28
MNIST_TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")


def torch_version() -> str:
    """torch's version without importing it (an import would raise this process's peak RSS)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch")
    except PackageNotFoundError:
        return "(not installed)"


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    kb = resource.getrusage(who).ru_maxrss  # kilobytes on Linux, bytes on macOS
    return kb / 2**20 if sys.platform == "darwin" else kb / 2**10


# --------------------------------------------------------------------------- the folder


def _idx_bytes(raw: Path, name: str, count: int) -> bytes:
    """The first ``count`` bytes of MNIST file ``name`` (uncompressed or .gz) under ``raw``."""
    for path, opener in ((raw / name, open), (raw / f"{name}.gz", gzip.open)):
        if path.is_file():
            try:
                with opener(path, "rb") as f:
                    return f.read(count)
            except (OSError, EOFError) as e:
                raise BenchError(f"cannot read {path}: {e}") from None
    raise BenchError(
        f"no MNIST at {raw}: it needs {' and '.join(MNIST_TRAIN)} (or .gz); pass --data-dir, the folder that "
        "holds MNIST/raw"
    )


def read_mnist(data_dir: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first n MNIST training digits (n, 28, 28) uint8 and their labels (n,), read with numpy."""
    raw = data_dir / "MNIST" / "raw"
    img = _idx_bytes(raw, MNIST_TRAIN[0], 16 + n * 784)
    lab = _idx_bytes(raw, MNIST_TRAIN[1], 8 + n)
    magic, total, rows, cols = np.frombuffer(img[:16], dtype=">i4")
    if magic != 2051 or (rows, cols) != (28, 28) or int.from_bytes(lab[:4], "big") != 2049:
        raise BenchError(f"the MNIST files under {raw} are not MNIST's idx format")
    if total < n or len(img) < 16 + n * 784 or len(lab) < 8 + n:
        raise BenchError(f"--n {n}: MNIST's training set under {raw} has {min(total, len(lab) - 8)} digits")
    x = np.frombuffer(img, dtype=np.uint8, offset=16).reshape(n, 28, 28)
    y = np.frombuffer(lab, dtype=np.uint8, offset=8)
    return x, y


def write_pngs(x: np.ndarray, y: np.ndarray, folder: Path) -> None:
    """Digit i -> folder/<label>/<i>.png, 28x28 grey."""
    from PIL import Image

    for label in sorted(set(y.tolist())):
        (folder / str(label)).mkdir()
    for i, (img, label) in enumerate(zip(x, y)):
        Image.fromarray(img, mode="L").save(folder / str(label) / f"{i:05d}.png")


# --------------------------------------------------------------------------- one run (the child)


def child(args) -> int:
    """Load the folder in one mode, train, and print one JSON line; errors as one line on stderr."""
    mode, workers = args.child[0], int(args.child[1])
    try:
        t_start = time.perf_counter()
        import multiprocessing

        try:
            # torch's import runs `ldconfig -p` (ctypes.util.find_library, in cuda.pathfinder), and that
            # child's ru_maxrss is this process's peak at the time (carried across exec), which would
            # then stand in RUSAGE_CHILDREN for the workers' peak: import it first, while this is small.
            import cuda.pathfinder  # noqa: F401
        except ImportError:
            pass
        import torch

        sys.path.insert(0, str(ROOT))
        from vae.config import ModelConfig, TrainConfig
        from vae.data import load_folder
        from vae.models import build_model
        from vae.train import fit

        torch.set_num_threads(args.threads)
        budget = 1e9 if mode == "in-memory" else 0.0
        t0 = time.perf_counter()
        data = load_folder(args.folder, size=IMAGE_SIZE, memory_budget_mb=budget)
        load_s = time.perf_counter() - t0
        if data.streamed != (mode == "stream"):
            raise BenchError(f"load_folder with a budget of {budget:g} MB did not give the {mode} path")
        torch.manual_seed(args.seed)
        model = build_model(ModelConfig(image_shape=(1, IMAGE_SIZE, IMAGE_SIZE), hidden=(400,), latent_dim=20))
        cfg = TrainConfig(
            dataset=f"folder:{args.folder}",
            epochs=args.epochs,
            batch_size=args.batch_size,
            seed=args.seed,
            device="cpu",
            memory_budget_mb=budget,
            workers=workers,
        )
        children_before = peak_rss_mb(resource.RUSAGE_CHILDREN)  # no workers yet: should be small
        history = fit(model, data, cfg)
        if history.error:
            raise BenchError(history.error)
        # The DataLoader's workers are joined when its iterator goes; make sure of it before
        # reading RUSAGE_CHILDREN (it counts only children that have been waited for).
        del model
        gc.collect()
        for p in multiprocessing.active_children():
            p.join(timeout=30)
        out = {
            "mode": mode,
            "workers": workers,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "load_s": load_s,
            "n_train": data.n_train,
            "n_test": len(data.test_x),
            "n_decoded": len(data.train_x) + len(data.test_x),  # by load_folder (streamed: test + preview)
            "skipped": len(data.skipped) + len(history.skipped),
            "epochs": [
                {k: e[k] for k in ("samples_per_s", "train_seconds", "test_elbo", "seconds")} for e in history.epochs
            ],
            "rss_trainer_mb": peak_rss_mb(resource.RUSAGE_SELF),
            "rss_workers_mb": peak_rss_mb(resource.RUSAGE_CHILDREN),
            "rss_children_before_mb": children_before,
            "wall_s": time.perf_counter() - t_start,
        }
    except Exception as e:  # one line for the parent, no traceback
        print(f"error: {type(e).__name__}: {e}".replace("\n", " "), file=sys.stderr, flush=True)
        return 1
    print(RESULT + json.dumps(out), flush=True)
    return 0


# --------------------------------------------------------------------------- the parent


def label(mode: str, workers: int) -> str:
    return "in-memory" if mode == "in-memory" else f"stream ({workers} worker{'s' if workers != 1 else ''})"


def run_child(args, folder: Path, mode: str, workers: int) -> dict:
    cmd = [
        sys.executable, str(Path(__file__).resolve()),
        "--child", mode, str(workers),
        "--folder", str(folder),
        "--epochs", str(args.epochs),
        "--batch-size", str(args.batch_size),
        "--seed", str(args.seed),
        "--threads", str(args.threads),
    ]  # fmt: skip
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(args.threads)
    name = label(mode, workers)
    returncode, stdout, stderr = run_limited(cmd, ROOT, env, args.timeout, f"{name} run")
    lines = [line for line in stdout.splitlines() if line.startswith(RESULT)]
    if returncode != 0 or not lines:
        errs = [line.strip() for line in stderr.splitlines() if line.strip()]
        why = next((e for e in reversed(errs) if e.startswith("error:")), errs[-1] if errs else "no output")
        raise BenchError(f"the {name} run failed (exit {returncode}): {why.removeprefix('error: ')}")
    out = json.loads(lines[-1][len(RESULT) :])
    steady = out["epochs"][1:] or out["epochs"]  # the first epoch includes starting the workers
    out["samples_per_s"] = statistics.median(e["samples_per_s"] for e in steady)
    out["train_s"] = sum(e["train_seconds"] for e in out["epochs"])
    out["test_elbo"] = out["epochs"][-1]["test_elbo"]
    return out


def workers_rss(runs: list[dict]) -> str:
    """The workers' peak RSS cell: '-' without worker processes; '<= X' where RUSAGE_CHILDREN was
    already at X before training (another child of the trainer) and the workers did not exceed it."""
    if runs[0]["mode"] == "in-memory" or runs[0]["workers"] == 0:
        return "-"
    rss = statistics.median(o["rss_workers_mb"] for o in runs)
    bound = any(o["rss_workers_mb"] <= o["rss_children_before_mb"] for o in runs)
    return f"{'<= ' if bound else ''}{rss:.0f}"


def parse_workers(text: str) -> list[int]:
    try:
        workers = list(dict.fromkeys(int(x) for x in text.split(",") if x.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--workers wants comma-separated integers, e.g. 0,2 (got {text!r})") from None
    if any(w < 0 or w > 64 for w in workers):
        raise argparse.ArgumentTypeError(f"--workers wants counts in 0..64 (got {text!r})")
    return workers


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=20_000, help="MNIST training digits written as PNG files (100..60000)")
    p.add_argument("--workers", type=parse_workers, default=[0, 2], help="streamed runs' DataLoader workers, e.g. 0,2")
    p.add_argument("--epochs", type=int, default=2, help="epochs per run (samples/s from those after the first)")
    p.add_argument("--threads", type=int, default=None, help="torch threads of the trainer (default: all cores)")
    p.add_argument("--repeats", type=int, default=1, help="rounds over the modes, order alternating; medians")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=1, help="the same for every run")
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data", help="holds MNIST/raw")
    p.add_argument("--timeout", type=float, default=0, help="seconds per run before it is stopped (0: none)")
    p.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    p.add_argument("--child", nargs=2, metavar=("MODE", "WORKERS"), help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 100 <= args.n <= 60_000:
        p.error("--n must be in 100..60000 (MNIST has 60,000 training digits)")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be at least 1")
    if args.child:
        return child(args)

    cores = cpu_cores()
    args.threads = args.threads or cores
    modes = [("in-memory", 0)] + [("stream", w) for w in args.workers]
    decoded_mb = args.n * IMAGE_SIZE * IMAGE_SIZE * 4 / 2**20
    print(
        f"{cores} cores ({cpu_name()}), torch {torch_version()}; N = {args.n:,} MNIST digits as "
        f"{IMAGE_SIZE}x{IMAGE_SIZE} grey PNG files, decoded float32 {decoded_mb:.1f} MB; 784-400-20 MLP VAE, "
        f"{args.epochs} epoch(s), batch {args.batch_size}, {args.threads} torch thread(s), seed {args.seed}, "
        f"{args.repeats} repeat(s); samples/s = median of the epochs "
        f"{'after the first' if args.epochs > 1 else '(only one: warm-up included)'}",
        flush=True,
    )
    results: dict[tuple[str, int], list[dict]] = {m: [] for m in modes}
    try:
        x, y = read_mnist(args.data_dir, args.n)
        with tempfile.TemporaryDirectory(prefix="folder_stream_") as tmp:
            folder = Path(tmp) / "mnist-png"
            folder.mkdir()
            t0 = time.perf_counter()
            try:
                write_pngs(x, y, folder)
            except OSError as e:
                raise BenchError(f"cannot write the PNG files under {folder}: {e}") from None
            write_s = time.perf_counter() - t0
            size_mb = sum(f.stat().st_size for f in folder.rglob("*.png")) / 2**20
            del x, y
            print(
                f"wrote {args.n:,} PNG files ({size_mb:.1f} MB) in {write_s:.1f} s "
                f"({1e3 * write_s / args.n:.2f} ms a file; not counted)",
                flush=True,
            )
            for r, (mode, workers) in alternating(args.repeats, modes):
                out = run_child(args, folder, mode, workers)
                results[(mode, workers)].append(out)
                w_mb = workers_rss([out]) + (" MB" if workers else "")
                skipped = f", {out['skipped']} file(s) unreadable" if out["skipped"] else ""
                run_line(
                    r,
                    f"{label(mode, workers):19s} load {out['load_s']:6.2f} s, "
                    f"{out['samples_per_s']:8,.0f} samples/s ({out['train_s']:.1f} s training, "
                    f"{out['n_train']:,} train / {out['n_test']:,} test), test ELBO {out['test_elbo']:.2f}, "
                    f"peak RSS trainer {out['rss_trainer_mb']:.0f} MB, workers {w_mb}, "
                    f"wall {out['wall_s']:.1f} s{skipped}",
                )
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1

    def med(mode_w: tuple[str, int], key: str) -> float:
        return statistics.median(o[key] for o in results[mode_w])

    base = med(modes[0], "samples_per_s")
    head = (
        "mode", "workers", "load s", "samples/s", "vs in-memory",
        "peak RSS trainer MB", "peak RSS workers MB", "test ELBO",
    )  # fmt: skip
    cells = []
    for m in modes:
        cells.append(
            (
                m[0],
                "-" if m[0] == "in-memory" else str(m[1]),
                f"{med(m, 'load_s'):.2f}",
                f"{med(m, 'samples_per_s'):,.0f}",
                f"{med(m, 'samples_per_s') / base:.2f}x",
                f"{med(m, 'rss_trainer_mb'):.0f}",
                workers_rss(results[m]),
                f"{med(m, 'test_elbo'):.2f}",
            )
        )
    medians = f" (medians of {args.repeats})" if args.repeats > 1 else ""
    print(
        f"results{medians}; test ELBO in nats/image (higher is better); workers' peak RSS is the largest worker's, "
        "shared copy-on-write pages included:"
    )
    print_table(head, cells, args.markdown)

    mem = modes[0]
    print(f"in-memory load: {1e3 * med(mem, 'load_s') / args.n:.3f} ms per image (listing, decoding, the split)")
    streamed = [o for m in modes[1:] for o in results[m]]
    if streamed:
        # Both loads list the same files; the in-memory one decodes the images the streamed one leaves on disk.
        extra = med(mem, "n_decoded") - statistics.median(o["n_decoded"] for o in streamed)
        if extra > 0:
            gap = med(mem, "load_s") - statistics.median(o["load_s"] for o in streamed)
            print(
                f"decoding one PNG file (vae.images.preprocess) ~ {1e3 * gap / extra:.3f} ms: the in-memory "
                f"load's extra time over the streamed one's, over the {extra:,.0f} images only it decodes"
            )
    for m in modes[1:]:
        extra_ms = 1e3 * (1 / med(m, "samples_per_s") - 1 / base)
        print(
            f"{label(*m)}: {extra_ms:+.3f} ms per training image against in-memory, trainer peak RSS "
            f"{med(m, 'rss_trainer_mb') - med(mem, 'rss_trainer_mb'):+.0f} MB, load "
            f"{med(m, 'load_s') - med(mem, 'load_s'):+.2f} s, "
            f"test ELBO {med(m, 'test_elbo') - med(mem, 'test_elbo'):+.2f}"
        )
    print(
        f"this parent's own peak RSS: {peak_rss_mb():.0f} MB (no torch); a trainer's ru_maxrss is at least this "
        "(Linux carries it across exec), so trainer figures above it are the trainer's own"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
