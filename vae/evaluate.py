"""Test-set evaluation: ELBO and its terms, the IWAE bound on log p(x), active units.

CLI: ``python -m vae.evaluate CKPT [--dataset NAME] [--iwae-k 5000] [--limit N] [--json]``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .models import VAE
from .objectives import elbo_terms, iwae_bound, kl_per_dim

ACTIVE_UNIT_NATS = 0.01


def binarized(x: Tensor, seed: int = 0) -> Tensor:
    """A fixed stochastic binarization of x in [0, 1] (the same for every evaluation)."""
    return torch.bernoulli(x, generator=torch.Generator(device=x.device).manual_seed(seed))


@dataclass
class ImageScore:
    """Per-image metrics in nats: ELBO = recon - kl; iwae >= elbo (in expectation)."""

    elbo: float
    recon: float
    kl: float
    iwae: float | None
    iwae_k: int


@torch.no_grad()
def score_images(model: VAE, x: Tensor, iwae_k: int = 1000, n_samples: int = 10) -> list[ImageScore]:
    """ELBO (Monte Carlo with ``n_samples`` draws), KL and IWAE_k for each image of x (N, C, H, W)."""
    model.eval()
    x = x.to(model.device)
    terms = elbo_terms(model, x, n_samples=n_samples)
    iw = iwae_bound(model, x, iwae_k).tolist() if not model.deterministic and iwae_k > 0 else [None] * len(x)
    return [
        ImageScore(elbo=e, recon=r, kl=k, iwae=i, iwae_k=iwae_k if i is not None else 0)
        for e, r, k, i in zip(terms.elbo.tolist(), terms.recon.tolist(), terms.kl.tolist(), iw)
    ]


@torch.no_grad()
def kl_by_dimension(model: VAE, x: Tensor, batch_size: int = 1000) -> Tensor:
    """Mean over x of KL(q(z_j|x) || N(0, 1)) for each latent dimension j: (D,)."""
    model.eval()
    total = torch.zeros(model.latent_dim)
    for i in range(0, len(x), batch_size):
        mu, logvar = model.encode(x[i : i + batch_size].to(model.device))
        if logvar is None:  # AE: no KL; rank dimensions by the code's variance instead
            return encode_mean(model, x).var(0)
        total += kl_per_dim(mu, logvar).sum(0).cpu()
    return total / len(x)


@torch.no_grad()
def encode_mean(model: VAE, x: Tensor, batch_size: int = 1000) -> Tensor:
    """The posterior means (codes) of x: (N, D) on the CPU."""
    model.eval()
    return torch.cat(
        [model.encode(x[i : i + batch_size].to(model.device))[0].cpu() for i in range(0, len(x), batch_size)]
    )


@torch.no_grad()
def evaluate(
    model: VAE,
    x: Tensor,
    iwae_k: int = 0,
    batch_size: int = 500,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, float | int | None]:
    """Average test metrics in nats per image.

    Returns ``elbo``, ``recon``, ``kl``, ``iwae`` (None if ``iwae_k`` is 0 or for an AE),
    ``iwae_k``, ``active_units`` (dimensions whose mean KL exceeds 0.01 nats) and ``n``.
    """
    model.eval()
    torch.manual_seed(seed)
    sums = {"elbo": 0.0, "recon": 0.0, "kl": 0.0, "iwae": 0.0}
    do_iwae = iwae_k > 0 and not model.deterministic
    # IWAE decodes iwae_k samples per image: keep the decoded batch near 50k images.
    iw_batch = max(1, min(batch_size, 50_000 // max(iwae_k, 1)))
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size].to(model.device)
        t = elbo_terms(model, xb, n_samples=1)
        sums["elbo"] += t.elbo.sum().item()
        sums["recon"] += t.recon.sum().item()
        sums["kl"] += t.kl.sum().item()
        if do_iwae:
            for j in range(0, len(xb), iw_batch):
                sums["iwae"] += iwae_bound(model, xb[j : j + iw_batch], iwae_k, chunk=min(iwae_k, 1000)).sum().item()
        if progress:
            progress(min(i + batch_size, len(x)), len(x))
    n = len(x)
    kl_dims = kl_by_dimension(model, x) if not model.deterministic else None
    return {
        "elbo": sums["elbo"] / n,
        "recon": sums["recon"] / n,
        "kl": sums["kl"] / n,
        "iwae": sums["iwae"] / n if do_iwae else None,
        "iwae_k": iwae_k if do_iwae else 0,
        "active_units": int((kl_dims > ACTIVE_UNIT_NATS).sum()) if kl_dims is not None else None,
        "n": n,
    }


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import CheckpointError, load_checkpoint
    from .cli import ArgParser
    from .data import DataError, load_dataset

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
    args = p.parse_args(argv)
    if args.iwae_k < 0 or (args.limit is not None and args.limit < 1) or args.batch_size < 1:
        p.error("--iwae-k must be >= 0, --limit and --batch-size >= 1")
    try:
        ckpt = load_checkpoint(args.checkpoint, device=args.device)
        name = args.dataset or ckpt.dataset.get("name") or (ckpt.train.dataset if ckpt.train else None)
        if not name:
            raise DataError("the checkpoint does not name its data set: pass --dataset")
        c, h, _ = ckpt.config.image_shape
        data = load_dataset(
            name, data_dir=args.data_dir or (ckpt.train.data_dir if ckpt.train else None), image_size=h, channels=c
        )
        if data.image_shape != ckpt.config.image_shape:
            raise DataError(f"{name} images are {data.image_shape}, the model needs {ckpt.config.image_shape}")
    except (CheckpointError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    x = data.test_x[: args.limit] if args.limit else data.test_x
    if args.binarize == "yes" or (args.binarize == "auto" and ckpt.config.binarize):
        x = binarized(x, args.seed)
    t0 = time.time()
    show = None if args.json else (lambda i, n: print(f"\r{i}/{n} images", end="", file=sys.stderr, flush=True))
    res = evaluate(ckpt.model, x, iwae_k=args.iwae_k, batch_size=args.batch_size, seed=args.seed, progress=show)
    res["seconds"] = round(time.time() - t0, 2)
    if args.json:
        print(json.dumps(res))
    else:
        print(file=sys.stderr)
        print(f"{args.checkpoint}: {res['n']} test images of {name}, nats per image")
        print(f"  ELBO {res['elbo']:.2f} = recon {res['recon']:.2f} - KL {res['kl']:.2f}")
        if res["iwae"] is not None:
            print(f"  IWAE bound on log p(x), k={res['iwae_k']}: {res['iwae']:.2f}")
        if res["active_units"] is not None:
            print(f"  active units (KL > {ACTIVE_UNIT_NATS} nats): {res['active_units']} of {ckpt.config.latent_dim}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
