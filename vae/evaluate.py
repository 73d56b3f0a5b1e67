"""Test-set evaluation: ELBO and its terms, the IWAE bound on log p(x), active units.

CLI: ``python -m vae.evaluate CKPT [--dataset NAME] [--iwae-k 5000] [--limit N] [--json]`` (vae.cli).
Every function takes images as the model scores them (``objectives.model_input``).
"""

from __future__ import annotations

# python -m vae.evaluate: hand over to the one entry (vae.cli) before defining anything; vae.cli imports this
# file again as vae.evaluate, so its classes and functions exist once.
if __name__ == "__main__":
    import sys

    from vae.cli import evaluate_main

    sys.exit(evaluate_main())

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .models import VAE
from .objectives import elbo_terms, iwae_bound

ACTIVE_UNIT_NATS = 0.01


@dataclass
class ImageScore:
    """Per-image metrics in nats: ELBO = recon - kl; iwae >= elbo (in expectation)."""

    elbo: float
    recon: float
    kl: float
    iwae: float | None
    iwae_k: int


def _generator(model: VAE, seed: int) -> torch.Generator:
    return torch.Generator(device=model.device).manual_seed(seed)


@torch.no_grad()
def split_terms(
    model: VAE, x: Tensor, batch_size: int = 1000, n_samples: int = 1, generator: torch.Generator | None = None
) -> Tensor:
    """Per-image ELBO, recon and KL of x (N, C, H, W), scored in batches: (N, 3) on the model's device.

    The one batched pass over a split: training's per-epoch test metrics, ``evaluate`` and the
    app's test-set reference all sum or rank its rows."""
    out = [torch.zeros(0, 3, device=model.device)]
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size].to(model.device, non_blocking=True)
        t = elbo_terms(model, xb, n_samples=n_samples, generator=generator)
        out.append(torch.stack([t.elbo, t.recon, t.kl], dim=1))
    return torch.cat(out)


@torch.no_grad()
def score_images(model: VAE, x: Tensor, iwae_k: int = 1000, n_samples: int = 10, seed: int = 0) -> list[ImageScore]:
    """ELBO (Monte Carlo with ``n_samples`` draws), KL and IWAE_k for each image of x (N, C, H, W)."""
    model.eval()
    x = x.to(model.device)
    gen = _generator(model, seed)
    terms = elbo_terms(model, x, n_samples=n_samples, generator=gen)
    do_iwae = not model.deterministic and iwae_k > 0
    iw = iwae_bound(model, x, iwae_k, generator=gen).tolist() if do_iwae else [None] * len(x)
    return [
        ImageScore(elbo=e, recon=r, kl=k, iwae=i, iwae_k=iwae_k if i is not None else 0)
        for e, r, k, i in zip(terms.elbo.tolist(), terms.recon.tolist(), terms.kl.tolist(), iw)
    ]


@torch.no_grad()
def kl_by_dimension(model: VAE, x: Tensor, batch_size: int = 1000) -> Tensor:
    """Mean over x of KL(q(z_j|x) || N(0, 1)) for each latent dimension j: (D,)."""
    model.eval()
    if model.deterministic:  # an AE has no KL: rank its dimensions by the code's variance instead
        return encode_mean(model, x, batch_size).var(0)
    total = torch.zeros(model.latent_dim)
    for i in range(0, len(x), batch_size):
        total += model.encode(x[i : i + batch_size].to(model.device)).kl_per_dim().sum(0).cpu()
    return total / len(x)


@torch.no_grad()
def encode_mean(model: VAE, x: Tensor, batch_size: int = 1000) -> Tensor:
    """The posterior means (codes) of x: (N, D) on the CPU."""
    model.eval()
    return torch.cat(
        [model.encode(x[i : i + batch_size].to(model.device)).mean.cpu() for i in range(0, len(x), batch_size)]
    )


@torch.no_grad()
def evaluate(
    model: VAE,
    x: Tensor,
    iwae_k: int = 0,
    batch_size: int = 500,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    iwae_limit: int | None = None,
) -> dict[str, float | int | None]:
    """Average test metrics in nats per image over x (N, C, H, W).

    Returns ``elbo``, ``recon``, ``kl``, ``iwae`` (None if ``iwae_k`` is 0 or for an AE),
    ``iwae_k``, ``iwae_n`` (the images it covers: the first ``iwae_limit``, default all, while the
    ELBO covers all N), ``active_units`` (dimensions whose mean KL exceeds 0.01 nats) and ``n``.
    ``progress(done, N)`` is called after each batch of ``batch_size`` images.
    """
    model.eval()
    gen = _generator(model, seed)
    # IWAE draws from a stream of its own: the ELBO does not depend on iwae_k or iwae_limit, and
    # (iwae_bound drawing image by image) the first M images' IWAE does not depend on iwae_limit.
    iw_gen = _generator(model, seed + 1)
    sums = torch.zeros(3, dtype=torch.float64)
    iwae_sum = 0.0
    do_iwae = iwae_k > 0 and not model.deterministic
    n = len(x)
    n_iw = (n if iwae_limit is None else max(0, min(iwae_limit, n))) if do_iwae else 0
    for i in range(0, n, batch_size):
        xb = x[i : i + batch_size].to(model.device)
        sums += split_terms(model, xb, batch_size, generator=gen).sum(0).double().cpu()
        if i < n_iw:  # iwae_bound batches images x samples itself, to its memory budget
            iwae_sum += iwae_bound(model, xb[: n_iw - i], iwae_k, generator=iw_gen).double().sum().item()
        if progress:
            progress(min(i + batch_size, n), n)
    kl_dims = kl_by_dimension(model, x) if not model.deterministic else None
    elbo, recon, kl = (sums / max(n, 1)).tolist()
    return {
        "elbo": elbo,
        "recon": recon,
        "kl": kl,
        "iwae": iwae_sum / n_iw if n_iw else None,
        "iwae_k": iwae_k if n_iw else 0,
        "iwae_n": n_iw,
        "active_units": int((kl_dims > ACTIVE_UNIT_NATS).sum()) if kl_dims is not None else None,
        "n": n,
    }
