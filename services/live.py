"""What the browser needs to decode codes itself: the model's decoder as an ONNX file and the
runtime that runs it (onnxruntime-web, vendored in static/ort/), both served by the app.

Streamlit serves ``static/`` beside app.py at ``/app/static/`` (``enableStaticServing`` in
.streamlit/config.toml). A decoder file is named by a hash of its bytes, so a browser never
runs a stale one and two sessions on one model share a file.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from dataclasses import dataclass
from pathlib import Path

import torch

import vae.export
from vae.checkpoint import atomic_write
from vae.data import cache_dir
from vae.export import decoder_onnx
from vae.meta import REPO_ROOT
from vae.models import VAE

STATIC = REPO_ROOT / "static"
URL_PREFIX = "/app/static"
RUNTIME = ("ort/ort.wasm.bundle.min.mjs", "ort/ort-wasm-simd-threaded.wasm")  # onnxruntime-web 1.30.0
SWITCH = "VAE_LIVE_DECODE"  # =0: every page decodes on the server (benchmarks time that path against this one)
MODULE = "live/decoder.mjs"  # the app's own decode-and-paint helpers, shared by every live view


@dataclass(frozen=True)
class LiveDecoder:
    """URLs a live view passes to the browser, or why the page must decode on the server instead."""

    model_url: str | None
    runtime_url: str
    module_url: str
    image_shape: tuple[int, int, int]
    latent_dim: int
    reason: str | None = None  # None: the browser can decode

    @property
    def available(self) -> bool:
        return self.reason is None

    def data(self) -> dict:
        """The part every component's ``data`` carries (keep it stable: a change re-mounts the view)."""
        return {
            "model_url": self.model_url,
            "runtime_url": self.runtime_url,
            "module_url": self.module_url,
            "shape": list(self.image_shape),
            "dim": self.latent_dim,
        }


def runtime_missing(static: Path = STATIC) -> list[str]:
    """The runtime's files that are not in ``static`` (empty when the browser can run decoders)."""
    return [f for f in (*RUNTIME, MODULE) if not (static / f).is_file()]


def decoder_file(model: VAE, static: Path = STATIC) -> Path:
    """Export the decoder (once per content) to static/models/decoder-<sha256>.onnx, atomically. A note in
    the disk cache, named by the decoder's weights, finds the file again in a new server process without
    exporting again (the export imports onnx: ~1 s of a page's first run)."""
    note = cache_dir() / f"decoder-of-{_decoder_digest(model)}.txt"
    try:
        known = static / "models" / note.read_text().strip()
        if known.name.startswith("decoder-") and known.suffix == ".onnx" and known.is_file():
            return known
    except OSError:
        pass
    data = decoder_onnx(model)
    path = static / "models" / f"decoder-{hashlib.sha256(data).hexdigest()[:16]}.onnx"
    if not path.exists():
        atomic_write(path, lambda f: f.write(data))
    try:
        atomic_write(note, lambda f: f.write(path.name.encode()))
    except OSError:  # a read-only cache only costs the export next time
        pass
    return path


def _decoder_digest(model: VAE) -> str:
    """A hash of what the export depends on: the model's config (its likelihood sets the mean the graph
    returns), the decoder's layers and weights, the exporter, torch."""
    h = hashlib.sha256(f"{model.config!r}|{model.decoder!r}|{torch.__version__}".encode())
    h.update(inspect.getsource(vae.export).encode())
    for name, t in model.decoder.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())  # any dtype, bfloat16 too
    return h.hexdigest()[:24]


def live_decoder(model: VAE, static: Path = STATIC) -> LiveDecoder:
    """Everything a live view needs for ``model``; ``reason`` says why it cannot run in the browser."""
    common = {
        "runtime_url": f"{URL_PREFIX}/{RUNTIME[0]}",
        "module_url": f"{URL_PREFIX}/{MODULE}",
        "image_shape": tuple(model.config.image_shape),
        "latent_dim": model.latent_dim,
    }
    if os.environ.get(SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return LiveDecoder(None, reason=f"it is turned off on this server ({SWITCH}=0)", **common)
    missing = runtime_missing(static)
    if missing:
        return LiveDecoder(None, reason=f"the in-browser runtime is missing ({', '.join(missing)})", **common)
    try:
        path = decoder_file(model, static)
    except Exception as e:  # an exporter failure (an unsupported layer, a read-only disk): decode on the server
        return LiveDecoder(None, reason=f"this decoder cannot be exported to ONNX ({type(e).__name__}: {e})", **common)
    return LiveDecoder(f"{URL_PREFIX}/{path.relative_to(static).as_posix()}", **common)
