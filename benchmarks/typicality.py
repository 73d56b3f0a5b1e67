"""Typicality on data: how often the Reconstruct page's verdict calls each kind of input out of distribution.

For every committed model (or those named) it calibrates the verdict's four tests (S(x), -log2 p(x), the
reconstruction's distortion and the grey levels) on one part of the test split, the page's reference (the first
1,000 test images; the first half of a smaller test set), then scores

- held-out test images, never in the reference, as tensors: the share called typical (target >= 95%);
- a sample of those held-out images saved as 8-bit PNG files and uploaded, preprocessing included;
- uploads that are not data: blank black and white pages, constant grey, uniform grey noise, colour noise and
  a white ring on a transparent background (several sizes, seeds and stroke widths each): the share called
  out of distribution (target 100%);
- uploads from another data set: MNIST digits and a hand-drawn 3 (several stroke widths) on a moons model,
  moons on a digits model, each as an 8-bit PNG file (``--foreign`` of each).

Each line gives the count, the share, and how many each test flags (S, -log p, x^ != x, levels). Everything goes
through ``services.scoring`` as the page does (``process_upload`` with the checkpoint's preprocessing; the
IWAE is skipped, the verdict does not use it). MNIST is read from ``--data-dir`` (default ``../shared/data``),
else from the test set shipped with the code.

    .venv/bin/python benchmarks/typicality.py [--models mnist-vae-2d mnist-vae-conv] [--held-out 2000] [--foreign 100]
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
sys.path.insert(0, str(ROOT / "tests"))  # vae_helpers: the tests' hand-drawn 3

from vae_helpers import drawn_three  # noqa: E402

from services.scoring import (  # noqa: E402
    REFERENCE_LIMIT,
    TESTS,
    Reference,
    codelength_bits,
    complexity_bits,
    process_upload,
    reconstruction_distortion,
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


def foreign(ds_name: str, n: int, data_dir: str) -> Iterator[tuple[str, str, bytes]]:
    """(kind, name, PNG bytes) of images from another data set than ``ds_name``'s, ``n`` of each kind."""
    if ds_name not in ("mnist", "digits"):
        x = load_dataset("mnist", data_dir=data_dir, download=False, need_train=False).test_x[:n]
        for i, xi in enumerate(x):  # enlarged like a photo of a digit, not already the model's size
            yield "MNIST digit", f"#{i}", png(to_pil(xi).resize((112, 112), Image.BILINEAR))
        for stroke in (10, 14, 18, 24, 30):
            yield "hand-drawn 3", f"stroke {stroke}px", drawn_three(stroke)
    if ds_name != "moons":
        for i, xi in enumerate(load_dataset("moons", need_train=False).test_x[:n]):
            yield "moon", f"#{i}", png(to_pil(xi))


def test_split(model_name: str, data, limit: int, held_out: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(reference images, held-out images): the page's first ``limit`` test images and others after them."""
    x = data.test_x
    n_ref = min(limit, len(x) // 2)
    return x[:n_ref], x[n_ref : n_ref + held_out]


def held_out_failed(model, ref: Reference, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Test name -> whether each held-out test image x (N, C, H, W) fails it: (N,) each."""
    elbo = reference_scores(model, x, limit=len(x), seed=1)  # another seed than the reference's
    xs = model_input(x, model.config)
    return ref.failed(
        codelength_bits(elbo, model.config),
        complexity_bits(xs, model.config),
        reconstruction_distortion(model, xs),
        ref.levels_of(x),  # before binarization, as the page does
    )


def uploads_failed(model, ref: Reference, style: str, dark: bool, files) -> dict[str, list[tuple[str, tuple]]]:
    """kind -> [(name, the tests it fails)] for (kind, name, bytes) uploads scored as the page does."""
    out: dict[str, list[tuple[str, tuple]]] = {}
    for kind, name, data in files:
        r = process_upload(name, data, model, style=style, dark_background=dark, reference=ref, iwae_k=0)
        if not r.ok:
            raise SystemExit(f"{kind} {name}: {r.error}")
        out.setdefault(kind, []).append((name, r.typicality.failed))
    return out


SHORT = {"simple": "S", "unlikely": "-log p", "unexplained": "x^!=x", "levels": "levels"}
IN_DATA = "test images as PNG uploads"


def _line(kind: str, failed: list[tuple], in_data: bool) -> str:
    n, flagged = len(failed), sum(bool(f) for f in failed)
    by = " ".join(f"{SHORT[t]} {sum(t in f for f in failed):4d}" for t in TESTS)
    what = f"typical {n - flagged:5d} {1 - flagged / n:6.1%}" if in_data else f"flagged {flagged:5d} {flagged / n:6.1%}"
    return f"  {kind:28s} {n:5d}  {what}   by test: {by}"


def report(name: str, ds: str, ref: Reference, held: dict[str, np.ndarray], uploaded: dict, seconds: float) -> None:
    print(
        f"\n{name} ({ds}; calibrated on {len(ref):,} test images; limits: S {ref.s_limit:+.0f} bits, "
        f"-log2 p {ref.codelength_limit:.0f} bits, (x - x^)^2 {ref.distortion_limit:.4f}, "
        f"levels {ref.levels_limit:.2f} bits/pixel; {seconds:.0f} s)"
    )
    per_image = list(zip(*(held[t] for t in TESTS)))
    print(_line("held-out test images", [tuple(t for t, on in zip(TESTS, f) if on) for f in per_image], True))
    for kind, rows in uploaded.items():
        failed = [f for _, f in rows]
        line = _line(kind, failed, kind == IN_DATA)
        missed = [n for n, f in rows if not f]
        if kind != IN_DATA and missed:
            line += f"  missed: {', '.join(missed[:8])}" + (f" (+{len(missed) - 8})" if len(missed) > 8 else "")
        print(line)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="*", help="checkpoint names (default: every committed one)")
    p.add_argument("--held-out", type=int, default=3000, help="held-out test images per model (default 3000)")
    p.add_argument("--uploads", type=int, default=100, help="held-out test images also uploaded as PNG (default 100)")
    p.add_argument("--foreign", type=int, default=100, help="images of each other data set uploaded (default 100)")
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
        held = held_out_failed(model, ref, held_x)
        style, dark = ds.get("style", "plain"), ds.get("dark_background", True)
        files = [(IN_DATA, f"#{i}", png(to_pil(x))) for i, x in enumerate(held_x[: args.uploads])]
        files += [*not_data(), *foreign(data.name, args.foreign, args.data_dir)]
        uploaded = uploads_failed(model, ref, style, dark, files)
        report(name, data.name, ref, held, uploaded, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
