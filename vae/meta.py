"""Checkpoint metadata without PyTorch: the safetensors header and its JSON.

Kept free of torch so that the app can show a model card before torch has finished importing.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

FORMAT = "vae-explorer/1"
MAX_HEADER_BYTES = 10 * 2**20
MAX_FILE_BYTES = 512 * 2**20
REPO_ROOT = Path(__file__).resolve().parent.parent


def checkpoint_dir() -> Path:
    """The checkpoint folder: $VAE_CHECKPOINT_DIR, else checkpoints/ beside the package.

    The CLI's default ``--out`` and the app's registry both resolve it here.
    """
    return Path(os.environ.get("VAE_CHECKPOINT_DIR") or REPO_ROOT / "checkpoints")


def atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Write a file through ``write(fileobj)`` into a temporary file beside it, then rename it into place:
    a reader sees the old file or the whole new one, never a half-written one (a kill mid-write included)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message says why in one sentence."""


def read_header(data: bytes, name: str) -> dict[str, Any]:
    """Validate the safetensors framing before anything is decoded."""
    # A pickle (0x80, protocol) or a torch.save zip (PK) is named as such, but only once the
    # bytes fail as safetensors: a valid header's length may itself begin with 0x80.
    pickle_like = data[:1] == b"\x80" or data[:2] == b"PK"
    refused = f"{name} is a pickle / torch.save file, not safetensors: refused, since loading a pickle can run code"
    if len(data) < 8:
        raise CheckpointError(f"{name} is too short to be a safetensors checkpoint ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES or 8 + n > len(data):
        if pickle_like:
            raise CheckpointError(refused)
        raise CheckpointError(f"{name} is not a valid safetensors file (header length {n} does not fit the file)")
    try:
        header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError):
        if pickle_like:
            raise CheckpointError(refused) from None
        raise CheckpointError(f"{name} is not a valid safetensors file (unreadable header)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{name} is not a valid safetensors file (header is not an object)")
    return header


def json_meta(meta: dict[str, str], key: str, name: str, default: Any = None) -> Any:
    if key not in meta:
        return default
    try:
        return json.loads(meta[key])
    except (TypeError, json.JSONDecodeError):
        raise CheckpointError(f"{name}: metadata '{key}' is not valid JSON") from None


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON metadata of a checkpoint file (config, dataset, metrics...) without its weights."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            n = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
            data = head + f.read(min(n, MAX_HEADER_BYTES))
    except OSError as e:
        raise CheckpointError(f"{path.name} cannot be read ({e.strerror or e})") from None
    meta = read_header(data, path.name).get("__metadata__") or {}
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path.name} is not a VAE explorer checkpoint")
    return {k: json_meta(meta, k, path.name) for k in ("config", "train", "dataset", "metrics", "history") if k in meta}
