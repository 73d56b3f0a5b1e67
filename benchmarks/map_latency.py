"""Latent map latency: PCA, t-SNE cold (ours vs scikit-learn's defaults) and t-SNE warm (disk cache).

Codes are the posterior means of the first --n test images of the committed MNIST conv checkpoint
(checkpoints/mnist-vae-conv.safetensors, MNIST read from --data-dir, default ../shared/data, else its test set
shipped in vae/assets/mnist); without either, of the moons-vae checkpoint on the moons data (whose test split
has 1,000 images: the rest are taken from its training split). Nothing is downloaded.

    python benchmarks/map_latency.py                 # 5,000 codes
    python benchmarks/map_latency.py --n 2000        # the page's default
    python benchmarks/map_latency.py --no-default    # skip scikit-learn's slow default t-SNE

Ours (services.maps.FAST_TSNE): PCA to <= 50 dims, PCA initialisation, 300 iterations of which 100 are early
exaggeration, Barnes-Hut angle 0.7, perplexity 30, learning rate 'auto'. The peer is ``TSNE()`` with
scikit-learn's defaults (1,000 iterations, 250 exaggerated, angle 0.5, PCA init, 'auto' rate). Both run
under the same OpenMP thread limit (--threads, default half the cores): on a busy machine more OpenMP
threads than free cores slow t-SNE down many times, which would flatter neither side fairly.
Quality: the share of each point's 10 nearest latent neighbours that stay among its 10 nearest on the map.
Targets: PCA < 1 s, warm < 1 s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services import maps  # noqa: E402
from vae.checkpoint import CheckpointError, load_checkpoint  # noqa: E402
from vae.data import DataError, load_dataset  # noqa: E402
from vae.evaluate import encode_mean  # noqa: E402


def load_codes(n: int, data_dir: str) -> tuple[str, np.ndarray, float]:
    """(description, codes (n, D), seconds to encode)."""
    conv = ROOT / "checkpoints" / "mnist-vae-conv.safetensors"
    tries = [(conv, "mnist"), (ROOT / "checkpoints" / "moons-vae.safetensors", "moons")]
    for path, name in tries:
        if not path.exists():
            print(f"({path.name} is not here)", file=sys.stderr)
            continue
        try:
            ckpt = load_checkpoint(path)
            data = load_dataset(name, data_dir=data_dir, download=False, need_train=False)
        except (CheckpointError, DataError) as e:
            print(f"({path.name}: {e})", file=sys.stderr)
            continue
        x = torch.cat([data.test_x, data.train_x])[:n]
        t = time.perf_counter()
        codes = encode_mean(ckpt.model, x).numpy()
        return f"{path.stem} on {name}", codes, time.perf_counter() - t
    raise SystemExit("no usable checkpoint and data set: need checkpoints/moons-vae.safetensors at least")


def preserved(codes: np.ndarray, xy: np.ndarray, k: int = 10) -> float:
    """Mean share of each point's k nearest latent neighbours among its k nearest map neighbours."""
    a = maps.neighbours(codes, codes, k + 1)[:, 1:]
    b = maps.neighbours(xy, xy, k + 1)[:, 1:]
    return float(np.mean([len(set(p) & set(q)) / k for p, q in zip(a, b)]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=5000, help="codes to map (default 5000)")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"), help="folder holding MNIST/raw")
    p.add_argument("--threads", type=int, default=None, help="OpenMP threads for t-SNE (default: half the cores)")
    p.add_argument("--no-default", action="store_true", help="skip scikit-learn's default TSNE() (slow)")
    args = p.parse_args(argv)
    if args.n < 10:
        p.error("--n must be at least 10")
    torch.set_grad_enabled(False)

    what, codes, t_enc = load_codes(args.n, args.data_dir)
    settings = maps.TsneSettings(threads=args.threads) if args.threads else maps.FAST_TSNE
    threads = maps.tsne_threads(settings)
    print(f"codes: {len(codes):,} x {codes.shape[1]} from {what} (encoded in {t_enc:.2f} s); t-SNE threads: {threads}")

    t = time.perf_counter()
    import sklearn.manifold  # noqa: F401  (t-SNE's import, once per process: not part of a map's time)

    print(f"(importing scikit-learn's t-SNE took {time.perf_counter() - t:.2f} s; PCA does not need it)")
    t = time.perf_counter()
    pca = maps.fit_map(codes, "pca")
    t_pca = time.perf_counter() - t
    print(f"PCA                 {t_pca:8.3f} s   (target < 1 s)   neighbours kept {preserved(codes, pca.xy):.3f}")

    with tempfile.TemporaryDirectory() as tmp:
        cache = maps.DiskCache(tmp)
        t = time.perf_counter()
        lmap, job, key = maps.tsne_map_async(codes, settings, cache=cache, runner=maps.Runner())
        job.wait()
        t_cold = time.perf_counter() - t
        if job.state != "done":
            raise SystemExit(f"t-SNE failed: {job.error}")
        ours = job.result.xy
        print(
            f"t-SNE cold, ours    {t_cold:8.3f} s   (background job, incl. writing the cache)   "
            f"neighbours kept {preserved(codes, ours):.3f}"
        )

        t = time.perf_counter()
        warm, job2, _ = maps.tsne_map_async(codes, settings, cache=cache, runner=maps.Runner())
        t_warm = time.perf_counter() - t
        assert warm is not None and job2 is None and np.array_equal(warm.xy, ours)
        print(f"t-SNE warm (cached) {t_warm:8.3f} s   (target < 1 s: hash the codes, read the .npy)")

    if not args.no_default:
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits

        t = time.perf_counter()
        with threadpool_limits(limits=threads, user_api="openmp"):
            peer = TSNE(n_components=2, random_state=0).fit_transform(codes)
        t_peer = time.perf_counter() - t
        print(f"t-SNE cold, sklearn TSNE() defaults {t_peer:8.3f} s   neighbours kept {preserved(codes, peer):.3f}")
        print(f"speed-up ours vs sklearn defaults: {t_peer / t_cold:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
