"""Typicality on data: how often the Reconstruct page's verdict calls each kind of input out of distribution.

For every committed model (or those named) it builds the page's reference (the first 1,000 test images;
the first half of a smaller test set), then scores

- held-out test images, never in the reference, as tensors: the share called typical (target >= 95%);
- a sample of those held-out images saved as 8-bit PNG files and uploaded, preprocessing included;
- uploads that are not data: blank black and white pages, constant grey, uniform grey noise, colour noise and
  a white ring on a transparent background (several sizes, seeds and stroke widths each): the share called
  out of distribution (target 100%).

Everything goes through ``services.scoring`` as the page does (``process_upload`` with the checkpoint's
preprocessing; the IWAE is skipped, the verdict does not use it). MNIST is read from ``--data-dir``
(default ``../shared/data``), else from the test set shipped with the code.

    .venv/bin/python benchmarks/typicality.py [--models mnist-vae-2d mnist-vae-conv] [--held-out 2000]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.scoring import (  # noqa: E402
    REFERENCE_LIMIT,
    Reference,
    codelength_bits,
    complexity_bits,
    process_upload,
    reference_scores,
    typicality_reference,
)
from vae.checkpoint import load_checkpoint  # noqa: E402
from vae.data import load_dataset  # noqa: E402
from vae.images import to_pil  # noqa: E402
from vae.objectives import model_input  # noqa: E402

SIZES = (28, 64, 280)
SEEDS = range(4)


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def ring(size: int, width: float) -> bytes:
    """A white ring, ``width`` a fraction of the canvas, on a fully transparent size x size canvas."""
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    m, stroke = size // 8, max(1, round(width * size))
    ImageDraw.Draw(img).ellipse((m, m, size - m, size - m), outline=(255, 255, 255, 255), width=stroke)
    return png(img)


def not_data() -> Iterator[tuple[str, str, bytes]]:
    """(kind, name, PNG bytes) of every upload that is not an image of the data."""
    for size in SIZES:
        yield "blank black", f"{size}px", png(Image.new("L", (size, size), 0))
        yield "blank white", f"{size}px", png(Image.new("L", (size, size), 255))
        for level in (64, 128, 192):
            yield "constant grey", f"{level} {size}px", png(Image.new("L", (size, size), level))
        for seed in SEEDS:
            rng = np.random.default_rng(seed)
            grey = rng.integers(0, 256, (size, size), np.uint8)
            yield "uniform noise", f"seed {seed} {size}px", png(Image.fromarray(grey))
            rgb = rng.integers(0, 256, (size, size, 3), np.uint8)
            yield "colour noise", f"seed {seed} {size}px", png(Image.fromarray(rgb, "RGB"))
    for size in (64, 256):
        for width in (0.02, 0.05, 0.1, 0.15):
            yield "transparent ring", f"{size}px stroke {width:.0%}", ring(size, width)


def test_split(model_name: str, data, limit: int, held_out: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(reference images, held-out images): the page's first ``limit`` test images and others after them."""
    x = data.test_x
    n_ref = min(limit, len(x) // 2)
    return x[:n_ref], x[n_ref : n_ref + held_out]


def held_out_typical(model, ref: Reference, x: torch.Tensor) -> np.ndarray:
    """Whether each held-out test image x (N, C, H, W) is called typical: (N,)."""
    elbo = reference_scores(model, x, limit=len(x), seed=1)  # another seed than the reference's
    return ref.typical(codelength_bits(elbo, model.config), complexity_bits(model_input(x, model.config), model.config))


def uploads_typical(model, ref: Reference, style: str, dark: bool, files) -> dict[str, list[tuple[str, bool, float]]]:
    """kind -> [(name, typical, S percentile)] for (kind, name, bytes) uploads scored as the page does."""
    out: dict[str, list[tuple[str, bool, float]]] = {}
    for kind, name, data in files:
        r = process_upload(name, data, model, style=style, dark_background=dark, reference=ref, iwae_k=0)
        if not r.ok:
            raise SystemExit(f"{kind} {name}: {r.error}")
        out.setdefault(kind, []).append((name, r.typicality.typical, r.typicality.percentile))
    return out


def report(name: str, ds: str, ref: Reference, typical: np.ndarray, uploaded: dict, seconds: float) -> None:
    print(
        f"\n{name} ({ds}; reference: {len(ref):,} test images; S limit {ref.s_limit:+.0f} bits, "
        f"-log2 p limit {ref.codelength_limit:.0f} bits; {seconds:.0f} s)"
    )
    print(f"  {'held-out test images':28s} {len(typical):5d}  typical {typical.mean():6.1%}")
    for kind, rows in uploaded.items():
        flags = np.array([t for _, t, _ in rows])
        if kind == "test images as PNG uploads":
            print(f"  {kind:28s} {len(rows):5d}  typical {flags.mean():6.1%}")
            continue
        missed = ", ".join(f"{n} (S pct {p:.1f})" for n, t, p in rows if t)
        line = f"  {kind:28s} {len(rows):5d}  out of distribution {1 - flags.mean():6.1%}"
        print(line + (f"  missed: {missed}" if missed else ""))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="*", help="checkpoint names (default: every committed one)")
    p.add_argument("--held-out", type=int, default=3000, help="held-out test images per model (default 3000)")
    p.add_argument("--uploads", type=int, default=100, help="held-out test images also uploaded as PNG (default 100)")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"), help="folder holding MNIST/raw")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = args.models or sorted(f.stem for f in (ROOT / "checkpoints").glob("*.safetensors"))
    for name in names:
        t0 = time.perf_counter()
        ckpt = load_checkpoint(ROOT / "checkpoints" / f"{name}.safetensors")
        model, ds = ckpt.model.eval(), ckpt.dataset
        data = load_dataset(ds["name"], data_dir=args.data_dir, download=False, need_train=False)
        ref_x, held_x = test_split(name, data, REFERENCE_LIMIT, args.held_out)
        ref = typicality_reference(model, ref_x)
        typical = held_out_typical(model, ref, held_x)
        style, dark = ds.get("style", "plain"), ds.get("dark_background", True)
        files = list(not_data())
        files += [("test images as PNG uploads", f"#{i}", png(to_pil(x))) for i, x in enumerate(held_x[: args.uploads])]
        uploaded = uploads_typical(model, ref, style, dark, files)
        report(name, data.name, ref, typical, uploaded, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
