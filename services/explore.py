"""Latent-space exploration: paths, traversals, the manifold grid, moon phases, export.

2-D maps of the codes (PCA, t-SNE) are in ``services.maps``.

Pure PyTorch / NumPy / scikit-learn; the app's pages call these. Codes are (N, D) tensors.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from services.disk_cache import cached, source_of
from vae.data import Dataset, find
from vae.distributions import log_normal
from vae.images import tile, to_pil
from vae.models import VAE

# --------------------------------------------------------------------------- paths in z


def slerp(z0: Tensor, z1: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for generative models).

    z0, z1 (D,), t (S,) in [0, 1] -> (S, D). Falls back to linear when z0 and z1 are parallel.
    """
    n0, n1 = z0.norm(), z1.norm()
    cos = torch.clamp(torch.dot(z0, z1) / (n0 * n1 + 1e-12), -1.0, 1.0)
    omega = torch.arccos(cos)
    t = t[:, None]
    if omega.abs() < 1e-4 or (math.pi - omega).abs() < 1e-4:
        return (1 - t) * z0 + t * z1
    so = torch.sin(omega)
    return torch.sin((1 - t) * omega) / so * z0 + torch.sin(t * omega) / so * z1


def path_at(z0: Tensor, z1: Tensor, t: Sequence[float] | Tensor, method: str = "linear") -> Tensor:
    """The codes at positions t (S,) in [0, 1] of the linear or slerp path from z0 to z1 (D,): (S, D).

    ui/components/interpolate.js computes the same path in the browser; keep the two in step.
    """
    t = torch.as_tensor(t, dtype=z0.dtype).reshape(-1)
    if method == "slerp":
        return slerp(z0, z1, t)
    if method == "linear":
        return (1 - t[:, None]) * z0 + t[:, None] * z1
    raise ValueError(f"method must be linear or slerp, got {method!r}")


def interpolate(z0: Tensor, z1: Tensor, steps: int, method: str = "linear") -> Tensor:
    """``steps`` codes from z0 to z1 (both ends included): (steps, D)."""
    return path_at(z0, z1, torch.linspace(0.0, 1.0, steps, dtype=z0.dtype), method)


def crossfade(x0: Tensor, x1: Tensor, steps: int) -> Tensor:
    """Pixel-space blend of two images (C, H, W) -> (steps, C, H, W): the baseline a latent path beats."""
    t = torch.linspace(0.0, 1.0, steps)[:, None, None, None]
    return (1 - t) * x0 + t * x1


def traversal(z: Tensor, dim: int, values: Sequence[float]) -> Tensor:
    """Copies of z (D,) with dimension ``dim`` set to each of ``values``: (len(values), D)."""
    out = z.repeat(len(values), 1)
    out[:, dim] = torch.as_tensor(list(values), dtype=z.dtype)
    return out


def manifold_grid(n: int, lo: float = 0.05, hi: float = 0.95) -> Tensor:
    """n x n codes of a 2-D latent on the Gaussian inverse-CDF spacing (Kingma & Welling, fig. 4).

    Rows go from high z2 (top) to low; columns from low z1 to high: (n*n, 2).
    """
    p = torch.linspace(lo, hi, n, dtype=torch.float64)
    v = torch.distributions.Normal(0.0, 1.0).icdf(p).float()
    zy, zx = torch.meshgrid(v.flip(0), v, indexing="ij")
    return torch.stack([zx.reshape(-1), zy.reshape(-1)], dim=1)


def prior_log_density(z: Tensor) -> Tensor:
    """log N(z; 0, I) for each code: (N, D) -> (N,) in nats."""
    return log_normal(z)


def nearest(reference: Tensor, queries: Tensor, k: int = 1) -> tuple[Tensor, Tensor]:
    """Euclidean k nearest reference rows for each query: distances and indices, each (N, k)."""
    d = torch.cdist(queries.float(), reference.float())
    dist, idx = d.topk(min(k, len(reference)), dim=1, largest=False)
    return dist, idx


@torch.no_grad()
def decode_batches(model: VAE, z: Tensor, batch_size: int = 1024) -> Tensor:
    """Decode many codes without holding every activation at once: (N, D) -> (N, C, H, W) on CPU."""
    model.eval()
    return torch.cat([model.decode(z[i : i + batch_size].to(model.device)).cpu() for i in range(0, len(z), batch_size)])


@torch.no_grad()
def latent_path(model: VAE, xa: Tensor, xb: Tensor, steps: int, method: str = "linear") -> tuple[Tensor, Tensor]:
    """The path from image xa to image xb (C, H, W) in z: ``steps`` codes (S, D) from one posterior
    mean to the other (see :func:`interpolate`) and their decodings (S, C, H, W), both on CPU."""
    model.eval()
    mu = model.encode(torch.stack([xa, xb]).to(model.device)).mean.cpu()
    z = interpolate(mu[0], mu[1], steps, method)
    return z, decode_batches(model, z)


def path_metrics(z: Tensor, train_codes: Tensor, images: str = "training", prior: bool = True) -> dict[str, np.ndarray]:
    """How far each code of a path z (S, D) is from the data: its Euclidean distance to the nearest code
    (N, D) of the data's ``images`` (training, or test where a data set comes without training images) and,
    with ``prior`` (a VAE's; an AE has none), its prior log-density; each (S,), by name."""
    out = {f"distance to nearest {images} code": nearest(train_codes, z)[0][:, 0].numpy()}
    if prior:
        out["log N(z; 0, I)"] = prior_log_density(z).numpy()
    return out


# --------------------------------------------------------------------------- paths between two images

REFERENCE_LIMIT = 5000  # reference images behind "the nearest image" and the latent plane


@dataclass
class Reference:
    """The images a path's distances to "the data" are measured to: the training split (or the test
    split where a data set comes without training images), less the path's own ends."""

    x: Tensor  # (M, C, H, W)
    index: Tensor  # (M,) their indices in the split
    split: str  # "train" or "test"
    n_ends: int  # how many of the first REFERENCE_LIMIT images were left out for being one of the ends

    @property
    def images(self) -> str:
        return "training" if self.split == "train" else "test"


def reference_for(data: Dataset, ends: Tensor, limit: int = REFERENCE_LIMIT) -> Reference:
    """The first ``limit`` images of the split nearest-image views compare against, less any equal to
    one of ``ends`` (E, C, H, W): each end is then measured to the nearest *other* image, alike whether
    it is one of them (a test image on MNIST from vae/assets) or not (an upload, a test moon)."""
    images, split = data.neighbours()
    n = min(limit, len(images))
    flat, e = images[:n].reshape(n, -1), ends.reshape(len(ends), -1)
    is_end = torch.zeros(n, dtype=torch.bool)
    for row in e:  # exact equality: an end is the very image, not one alike
        is_end |= (flat == row).all(1)
    index = torch.nonzero(~is_end).flatten()
    return Reference(images[index], index, split, int(is_end.sum()))


@dataclass
class Codes:
    """q(z|x) of N images: means (N, D) and standard deviations (N, D), None for an AE."""

    mean: Tensor
    std: Tensor | None = None


@torch.no_grad()
def encode_all(model: VAE, x: Tensor, batch_size: int = 1000) -> Codes:
    """The posterior means and sigmas of images x (N, C, H, W), on CPU."""
    model.eval()
    qs = [model.encode(x[i : i + batch_size].to(model.device)) for i in range(0, len(x), batch_size)]
    std = None if model.deterministic else torch.cat([q.std.cpu() for q in qs])
    return Codes(torch.cat([q.mean.cpu() for q in qs]), std)


def encoded(key: str, model: VAE, x: Tensor) -> Codes:
    """:func:`encode_all`, kept on disk under ``key`` (the checkpoint's identity and what x is): the
    training codes do not change between sessions."""
    return cached(Codes, "codes", f"{key}:{len(x)}:{source_of(encode_all)}", lambda: encode_all(model, x))


@dataclass
class PathRow:
    """One row of the page: a model's path (or the cross-fade) and how far each step is from the data."""

    title: str
    frames: Tensor  # (S, C, H, W)
    z: Tensor | None  # (S, D); None for the cross-fade, which has no code
    metrics: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (S,)


def paths_between(
    models: Sequence[tuple[str, VAE, Tensor]],
    xa: Tensor,
    xb: Tensor,
    steps: int,
    method: str,
    ref: Reference,
    crossfade_title: str,
) -> list[PathRow]:
    """Each model's path from xa to xb (C, H, W), given as (title, model, the reference's codes (M, D)),
    then the pixel cross-fade; every row's frames measured to the reference images alike."""
    rows = []
    for title, model, codes in models:
        z, frames = latent_path(model, xa, xb, steps, method)
        rows.append(PathRow(title, frames, z, path_metrics(z, codes, ref.images, prior=not model.deterministic)))
    rows.append(PathRow(crossfade_title, crossfade(xa, xb, steps), None))
    for row in rows:
        row.metrics[pixel_metric(ref.images)] = pixel_distance(row.frames, ref.x).numpy()
    return rows


def pixel_metric(images: str) -> str:
    return f"pixel distance to nearest {images} image"


def fits_pictures(data: Dataset) -> bool:
    """Whether the data set's own renderer can be fitted to a decoded picture (moons: its phase,
    lit fraction and whether any moon fits), which Interpolate uses to name frames and draw the
    moon argument. Read from the data-set registry."""
    spec = find(data.name)
    return spec is not None and spec.fit is not None


def example_ends(data: Dataset, default: tuple[int, int] | None = None) -> tuple[int, int]:
    """Test indices of the default ends A and B: the data set's documented example where it has one
    (moons: a full and a half moon), else ``default``, else the first test image and the first of
    another label."""
    spec = find(data.name)
    if spec is not None and spec.example_pair is not None:
        return spec.example_pair(data)
    if default is not None:
        return default
    other = torch.nonzero(data.test_y != data.test_y[0]).flatten()
    return 0, int(other[0]) if len(other) else min(1, len(data.test_x) - 1)


def has_example_pair(data: Dataset) -> bool:
    """Whether the data set documents a pair of ends (moons: the seeds' full and half moon)."""
    spec = find(data.name)
    return spec is not None and spec.example_pair is not None


# --------------------------------------------------------------------------- moons


def pixel_distance(images: Tensor, reference: Tensor) -> Tensor:
    """RMS pixel distance from each image (N, C, H, W) to its nearest reference image: (N,)."""
    flat = images.reshape(len(images), -1)
    dist, _ = nearest(reference.reshape(len(reference), -1), flat, 1)
    return dist[:, 0] / math.sqrt(flat.shape[1])


def phase_name(angle: float) -> str:
    from vae.data import PHASE_NAMES, phase_class

    return PHASE_NAMES[int(phase_class(angle))]


def strip(images: Tensor, scale: int = 4, pad: int = 2) -> Image.Image:
    """(N, C, H, W) -> one PIL image with the frames side by side."""
    return to_pil(tile(images.cpu(), nrow=len(images), padding=pad, pad_value=0.5), scale=scale)


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


GIF_MS_PER_FRAME = 120


def gif_bytes(images: Tensor, scale: int = 4) -> bytes:
    """(N, C, H, W) -> an animated, looping GIF, played forward then back (so the loop has no jump)."""
    frames = [to_pil(x, scale=scale).convert("P") for x in images]
    if len(frames) > 2:
        frames = frames + frames[-2:0:-1]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=GIF_MS_PER_FRAME, loop=0)
    return buf.getvalue()
