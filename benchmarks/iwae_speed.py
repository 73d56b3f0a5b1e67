"""Importance-weighted evaluation speed: ``vae.objectives.iwae_bound`` (batched over images x samples,
chunked to a memory budget) against a plain loop, and against the CPU's float32 matmul peak.

The peer is the usual way to write IWAE-k (Burda et al. 2015; e.g. the IWAE evaluation loops in
pytorch/examples-style code): one image at a time, 1,000 samples per decoder call, ``log_likelihood``
on ``x.expand_as(logits)``, log-weights combined per image. It is timed on a subset of images and
extrapolated to the full 10,000 (said so in the output). Cases:

  (a) float32 matmul peak: a large sgemm, GFLOP/s with the current threads;
  (b) IWAE-5000 for the 784-400-20 MLP of pytorch/examples (seeded random weights: timing only);
  (c) IWAE-5000 for the committed checkpoints/mnist-vae-conv.safetensors;
  (d) the Reconstruct page: ``score_images`` with iwae_k=5000 on 10 images, for the page's default
      model (moons-vae, an MLP) and for the conv model, each with the floor its FLOPs set at the peak.

Targets: (b) <= 3 min for 10k test digits, (c) <= 40 min, (d) < 1 s. Achieved GFLOP/s count the
decoder's FLOPs only (torch.utils.flop_counter on one decode), so the share of peak is what the
matmuls/convolutions reach; the likelihood's softplus and sums come on top.

    python benchmarks/iwae_speed.py                        # ~3-5 min on 2 cores: subsets, extrapolated
    python benchmarks/iwae_speed.py --n-mlp 10000 --n-conv 10000   # the full runs (conv: long)
    python benchmarks/iwae_speed.py --explore              # memory budgets for the chunks

Images: MNIST's test set from --data-dir (default ../shared/data) if present, else the copy in
vae/assets/mnist; binarized as the models score them (objectives.model_input).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import cpu_cores, cpu_name  # noqa: E402
from benchmarks.peak import matmul_peak  # noqa: E402
from vae.checkpoint import load_checkpoint  # noqa: E402
from vae.config import ModelConfig  # noqa: E402
from vae.data import load_dataset, load_mnist  # noqa: E402
from vae.evaluate import score_images  # noqa: E402
from vae.models import VAE, build_model  # noqa: E402
from vae.objectives import iwae_bound, log_likelihood, log_normal, model_input  # noqa: E402

FULL = 10_000


def decode_flops(model: VAE) -> int:
    """FLOPs of decoding one code (torch.utils.flop_counter: matmuls and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model.decode_logits(torch.zeros(100, model.latent_dim))
    return fc.get_total_flops() // 100


@torch.no_grad()
def peer_iwae(model: VAE, x: torch.Tensor, k: int, generator: torch.Generator, per_call: int = 1000) -> torch.Tensor:
    """The plain loop: one image at a time, ``per_call`` samples per decoder call: (N,)."""
    out = []
    for xi in x:
        q = model.encode(xi[None])
        parts = []
        for s in range(0, k, per_call):
            z = q.sample(generator, n_samples=min(per_call, k - s))  # (m, 1, D)
            logits = model.decode_logits(z.reshape(-1, z.shape[-1]))
            lw = log_likelihood(xi, logits, model.config.likelihood, model.log_sigma)
            lw = lw + log_normal(z[:, 0]) - q.log_prob(z)[:, 0]
            parts.append(torch.logsumexp(lw, 0))
        out.append(torch.logsumexp(torch.stack(parts), 0) - math.log(k))
    return torch.stack(out)


def ours_iwae(model: VAE, x: torch.Tensor, k: int, generator: torch.Generator, **kw) -> torch.Tensor:
    """iwae_bound in calls of 500 images, as vae.evaluate.evaluate makes them: (N,)."""
    return torch.cat([iwae_bound(model, x[i : i + 500], k, generator=generator, **kw) for i in range(0, len(x), 500)])


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def fmt_s(s: float) -> str:
    return f"{s:,.1f} s" if s < 120 else f"{s / 60:,.1f} min"


def case(name: str, model: VAE, x: torch.Tensor, k: int, n: int, n_peer: int, peak: float, target_s: float) -> None:
    """Time ours on n images and the peer on n_peer; print figures and the 10k extrapolations."""
    flops_row = decode_flops(model)
    print(
        f"\n{name}: IWAE-{k}, decoder {flops_row / 1e6:.2f} MFLOP per code, "
        f"{flops_row * k * FULL / 1e12:.1f} TFLOP for {FULL:,} images"
    )
    print(f"  at the measured peak the 10k run cannot take less than {fmt_s(flops_row * k * FULL / peak / 1e9)}")
    t_ours, iw = timed(lambda: ours_iwae(model, x[:n], k, torch.Generator().manual_seed(0)))
    ours10k = t_ours / n * FULL
    gf = flops_row * k * n / t_ours / 1e9
    extra = "" if n == FULL else f" (measured on {n:,}, extrapolated)"
    print(
        f"  ours: {n:,} images in {fmt_s(t_ours)}; 10k: {fmt_s(ours10k)}{extra}; "
        f"{gf:,.0f} GFLOP/s = {gf / peak:.0%} of peak; target {fmt_s(target_s)}: "
        f"{'met' if ours10k <= target_s else 'NOT met'}; mean IWAE {iw.double().mean():.2f} nats"
    )
    t_peer, iw_p = timed(lambda: peer_iwae(model, x[:n_peer], k, torch.Generator().manual_seed(0)))
    peer10k = t_peer / n_peer * FULL
    print(
        f"  peer (plain loop, 1,000 samples a call): {n_peer:,} images in {fmt_s(t_peer)}; "
        f"10k extrapolated: {fmt_s(peer10k)}; mean IWAE {iw_p.double().mean():.2f} nats "
        f"(other noise; ours on the same images {iw[:n_peer].double().mean():.2f})"
    )
    print(f"  speed-up over the peer: x{peer10k / ours10k:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--k", type=int, default=5000)
    ap.add_argument("--n-mlp", type=int, default=200, help="test digits for ours, MLP (10000: the full run)")
    ap.add_argument("--n-conv", type=int, default=10, help="test digits for ours, conv (10000: the full run)")
    ap.add_argument("--peer-n-mlp", type=int, default=20, help="digits for the peer, MLP (extrapolated)")
    ap.add_argument("--peer-n-conv", type=int, default=4, help="digits for the peer, conv (extrapolated)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--explore", action="store_true", help="time memory budgets instead")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    data = load_mnist("mnist", data_dir=args.data_dir, download=False, need_train=False)
    print(f"{cpu_name()}, {cpu_cores()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"images: {len(data.test_x):,} MNIST test digits ({'shipped copy' if data.note else args.data_dir})")
    peak = matmul_peak()
    print(f"(a) float32 matmul peak (3072^3 sgemm): {peak:,.0f} GFLOP/s")

    mlp_cfg = ModelConfig(image_shape=(1, 28, 28), hidden=(400,), latent_dim=20, binarize=True)
    mlp = build_model(mlp_cfg, generator=torch.Generator().manual_seed(0)).eval()
    conv = load_checkpoint(ROOT / "checkpoints" / "mnist-vae-conv.safetensors").model.eval()
    x_mlp = model_input(data.test_x, mlp_cfg)
    x_conv = model_input(data.test_x, conv.config)

    if args.explore:
        for name, model, x, n in (("mlp", mlp, x_mlp, 200), ("conv", conv, x_conv, 10)):
            for mb in (8, 32, 64, 128, 256, 512):
                t0 = time.perf_counter()
                ours_iwae(model, x[:n], args.k, torch.Generator().manual_seed(0), memory_mb=mb)
                t = time.perf_counter() - t0
                print(f"  {name} memory_mb={mb:4d}: {n} images {t:.2f} s, 10k {fmt_s(t / n * FULL)}")
        return

    case("(b) MLP 784-400-20", mlp, x_mlp, args.k, args.n_mlp, args.peer_n_mlp, peak, 180.0)
    case("(c) conv checkpoint", conv, x_conv, args.k, args.n_conv, args.peer_n_conv, peak, 40 * 60.0)

    moons = load_checkpoint(ROOT / "checkpoints" / "moons-vae.safetensors").model.eval()
    x_moons = model_input(load_dataset("moons", image_size=28, download=False).test_x[:10], moons.config)
    for name, model, x in (("moons-vae (the page's default)", moons, x_moons), ("conv checkpoint", conv, x_conv)):
        floor = decode_flops(model) * 5000 * 10 / peak / 1e9
        print(f"\n(d) Reconstruct page, {name}: score_images(10 images, iwae_k=5000, n_samples=10)")
        times = [timed(lambda m=model, xs=x[:10]: score_images(m, xs, iwae_k=5000))[0] for _ in range(2)]
        print(
            f"  best of 2: {min(times):.2f} s (all: {', '.join(f'{t:.2f}' for t in times)}); floor at the peak "
            f"{floor:.2f} s; target < 1 s: {'met' if min(times) < 1 else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
