"""Comparing models side by side on the same inputs: what β trades (the Compare page).

Rate R = KL(q(z|x) ‖ N(0, I)) and distortion D = −E_q[log p(x|z)], both test means in nats per
image, so that ELBO = −(D + R) whatever β the model was trained with. Pure PyTorch; no UI.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

import vae.evaluate
import vae.objectives
from services import bound
from services.bound import ModelSpread, model_spread
from services.disk_cache import cached, digest, source_of
from vae.evaluate import ACTIVE_UNIT_NATS, encode_mean, kl_by_dimension, split_terms
from vae.models import VAE
from vae.objectives import iwae_bound, model_input

MAX_MODELS = 4


class CompareError(ValueError):
    """Models that cannot be shown on the same inputs (one clear message)."""


@dataclass(frozen=True)
class Candidate:
    """What a checkpoint's metadata says about it, enough to group and check models without loading them."""

    name: str
    dataset: str
    image_shape: tuple[int, ...]
    kind: str
    beta: float
    # Everything but β that shapes a model: a β sweep shares it.
    recipe: tuple

    @classmethod
    def from_metadata(cls, name: str, meta: Mapping) -> Candidate:
        cfg = dict(meta.get("config") or {})
        train = meta.get("train") or {}
        ds = (meta.get("dataset") or {}).get("name") or train.get("dataset") or "?"
        shape = tuple(cfg.get("image_shape") or ())
        beta = float(cfg.pop("beta", 1.0))
        recipe = (
            ds,
            tuple(sorted((k, str(v)) for k, v in cfg.items())),
            train.get("epochs"),
            train.get("seed"),
        )
        return cls(name, ds, shape, str(cfg.get("kind", "vae")), beta, recipe)


def beta_sweep(candidates: Sequence[Candidate]) -> list[str]:
    """The names of the largest group of VAEs alike in all but β (at least two β values), by β;
    [] when there is none. Ties go to the group met first (the registry lists the default first)."""
    groups: dict[tuple, dict[float, str]] = {}
    for c in candidates:
        if c.kind == "vae":
            groups.setdefault(c.recipe, {}).setdefault(c.beta, c.name)
    best = max(groups.values(), key=len, default={})
    if len(best) < 2:
        return []
    return [best[b] for b in sorted(best)][:MAX_MODELS]


def check_comparable(candidates: Sequence[Candidate]) -> None:
    """Raise ``CompareError`` unless there are 2 to 4 models of one data set and image shape."""
    if not 2 <= len(candidates) <= MAX_MODELS:
        raise CompareError(f"Pick two to four models to compare ({len(candidates)} picked).")

    def shape(c: Candidate) -> str:
        return "×".join(map(str, c.image_shape)) or "?"

    shapes = {shape(c) for c in candidates}
    if len(shapes) > 1:
        each = "; ".join(f"{c.name}: {shape(c)}" for c in candidates)
        raise CompareError(
            f"These models take images of different shapes ({each}), so they cannot be shown on the same "
            "inputs. Pick models of one image shape."
        )
    sets = {c.dataset for c in candidates}
    if len(sets) > 1:
        each = "; ".join(f"{c.name}: {c.dataset}" for c in candidates)
        raise CompareError(
            f"These models were trained on different data sets ({each}): their nats are measured on different "
            "test images and do not compare. Pick models of one data set."
        )


def shared_inputs(x: Tensor, n: int, seed: int = 0) -> Tensor:
    """Indices (n,) of the test images every model is shown: a seeded draw without repeats, so that
    every model, and every rerun, gets the same ones."""
    n = min(n, len(x))
    return torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n].sort().values


@dataclass
class Measured:
    """One model's test figures in nats per image (means over the same images).

    For an AE, ``rate``, ``elbo``, ``iwae`` and ``active_units`` are None: its code is a point, with no KL
    and no bound; ``kl_dims`` is then empty. ``distortion`` is −log p(x|z) at its code.
    """

    name: str
    kind: str
    beta: float
    distortion: float
    rate: float | None
    elbo: float | None
    iwae: float | None
    iwae_k: int
    iwae_n: int
    kl_dims: Tensor  # (D,), largest first; (0,) for an AE
    active_units: int | None
    latent_dim: int
    n: int


@torch.no_grad()
def measure(
    name: str,
    model: VAE,
    x: Tensor,
    iwae_k: int = 100,
    iwae_n: int | None = None,
    n_samples: int = 10,
    seed: int = 0,
) -> Measured:
    """Rate, distortion, ELBO, IWAE_k and per-dimension KL of one model on test images x (N, C, H, W).

    The ELBO and its terms use all of x with ``n_samples`` draws z ~ q(z|x) per image; the IWAE the
    first ``iwae_n`` images (default all: it decodes k codes per image, and a bound compares with the
    ELBO only on the same images). Every draw comes from ``seed``, so two models see the same noise
    where their shapes agree.
    """
    model.eval()
    xm = model_input(x, model.config)
    gen = torch.Generator(device=model.device).manual_seed(seed)
    terms = split_terms(model, xm, batch_size=500, n_samples=n_samples, generator=gen).double().mean(0).cpu()
    elbo, recon, kl = terms.tolist()
    beta = float(model.config.beta)
    common = {"name": name, "beta": beta, "distortion": -recon, "latent_dim": model.latent_dim, "n": len(x)}
    if model.deterministic:
        return Measured(
            kind="ae",
            rate=None,
            elbo=None,
            iwae=None,
            iwae_k=0,
            iwae_n=0,
            kl_dims=torch.zeros(0),
            active_units=None,
            **common,
        )
    kl_dims = kl_by_dimension(model, xm, batch_size=500).sort(descending=True).values
    n_iw = 0 if iwae_k <= 0 else len(xm) if iwae_n is None else min(iwae_n, len(xm))
    iwae = None
    if n_iw:
        chunk = max(1, 20_000 // iwae_k)  # images per call: about 20k decodes at a time
        iw = [iwae_bound(model, xm[i : min(i + chunk, n_iw)], iwae_k, generator=gen) for i in range(0, n_iw, chunk)]
        iwae = float(torch.cat(iw).double().mean())
    return Measured(
        kind="vae",
        rate=kl,
        elbo=elbo,
        iwae=iwae,
        iwae_k=iwae_k if n_iw else 0,
        iwae_n=n_iw,
        kl_dims=kl_dims,
        active_units=int((kl_dims > ACTIVE_UNIT_NATS).sum()),
        **common,
    )


@torch.no_grad()
def reconstructions(model: VAE, x: Tensor) -> Tensor:
    """The decoded posterior means of x (N, C, H, W), as each model shows its reconstruction: (N, C, H, W) on CPU."""
    model.eval()
    return model.decode(encode_mean(model, model_input(x, model.config)).to(model.device)).cpu()


@torch.no_grad()
def prior_samples(model: VAE, n: int, seed: int) -> Tensor:
    """Decodings of n codes z ~ N(0, I) drawn from ``seed``: (n, C, H, W) on CPU. Models of one latent size
    decode the very same codes. For an AE they are not samples of anything: it has no prior."""
    model.eval()
    return model.sample(n, generator=torch.Generator().manual_seed(seed)).cpu()


def rate_distortion(measured: Sequence[Measured]) -> list[tuple[str, float, float, float]]:
    """(name, β, rate, distortion) of every model with a rate (the VAEs), by rate."""
    return sorted(((m.name, m.beta, m.rate, m.distortion) for m in measured if m.rate is not None), key=lambda t: t[2])


# --------------------------------------------------------------------------- kept on disk


def _code() -> str:
    """The source the measures depend on: a change to it measures again."""
    return source_of(measure, vae.evaluate, vae.objectives, bound)


def measure_kept(key: str, name: str, model: VAE, x: Tensor, iwae_k: int = 100, seed: int = 0) -> Measured:
    """:func:`measure`, kept on disk under the checkpoint's identity ``key`` and the inputs' digest: the
    same checkpoint on the same test images measures the same in every session."""
    k = f"{key}|{name}|{digest(x)}|{iwae_k}|{seed}|{_code()}"
    return cached(Measured, "measure", k, lambda: measure(name, model, x, iwae_k=iwae_k, seed=seed))


def spread_kept(key: str, model: VAE, x: Tensor, L: int) -> ModelSpread:
    """``services.bound.model_spread`` of test images x (N, C, H, W) as the model sees them, kept on disk
    like :func:`measure_kept`."""
    k = f"{key}|{digest(x)}|{L}|{_code()}"
    return cached(ModelSpread, "spread", k, lambda: model_spread(model, model_input(x, model.config), L))
