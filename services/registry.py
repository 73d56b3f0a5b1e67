"""Where checkpoints live: the committed ones and those trained in the app.

Names are checked before they become paths, so a crafted name cannot write outside the
checkpoint folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from vae.meta import REPO_ROOT, checkpoint_dir  # noqa: F401 (re-exported)

TRAINED = "trained"  # sub-folder for checkpoints trained in the app (not committed)
DEFAULT_CHECKPOINT = "moons-vae"
SUFFIX = ".safetensors"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


@dataclass(frozen=True)
class Entry:
    """A checkpoint file: ``name`` is its stem, ``source`` committed or trained."""

    name: str
    path: Path
    source: str

    @property
    def label(self) -> str:
        return self.name if self.source == "committed" else f"{self.name} (trained here)"


def trained_dir() -> Path:
    """Where the app writes checkpoints it trains: $VAE_TRAINED_DIR, else checkpoints/trained/."""
    return Path(os.environ.get("VAE_TRAINED_DIR") or checkpoint_dir() / TRAINED)


def check_name(name: str) -> str:
    """Return ``name`` if it is a safe checkpoint name (letters, digits, '-', '_'; up to 64)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError("a checkpoint name is 1 to 64 letters, digits, '-' or '_', starting with a letter or digit")
    return name


def trained_path(name: str) -> Path:
    """Where a checkpoint trained in the app under ``name`` is written."""
    return trained_dir() / f"{check_name(name)}{SUFFIX}"


def list_checkpoints() -> list[Entry]:
    """Committed checkpoints (default first), then the ones trained here, newest first."""
    root = checkpoint_dir()
    committed = sorted(root.glob(f"*{SUFFIX}"), key=lambda p: (p.stem != DEFAULT_CHECKPOINT, p.stem))
    trained = sorted(trained_dir().glob(f"*{SUFFIX}"), key=lambda p: -p.stat().st_mtime)
    return [Entry(p.stem, p, "committed") for p in committed] + [Entry(p.stem, p, "trained") for p in trained]


def choose_entry(entries: list[Entry], label: str | None) -> Entry | None:
    """The entry a picker label names, else the default checkpoint, else the first (None if none)."""
    for e in entries:
        if e.label == label:
            return e
    return next((e for e in entries if e.name == DEFAULT_CHECKPOINT), entries[0] if entries else None)
