"""Where checkpoints live: the committed ones and those trained in the app.

Names are checked before they become paths, so a crafted name cannot write outside the
checkpoint folder.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
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


def checkpoint_dir() -> Path:
    """The checkpoint folder: $VAE_CHECKPOINT_DIR, else checkpoints/ beside the package."""
    return Path(os.environ.get("VAE_CHECKPOINT_DIR") or REPO_ROOT / "checkpoints")


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


class InUseError(RuntimeError):
    """Another training run (the app's or the CLI's) is writing this checkpoint right now."""


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def reserve(path: Path) -> None:
    """Claim ``path`` for one training run: create ``PATH.lock`` atomically (O_EXCL), so two runs,
    in one process or in two (the app and the CLI), never write the same file.

    The lock names its process; a lock left by a process that died (killed mid-run) is taken over.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = lock_path(path)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if _stale(lock):
                lock.unlink(missing_ok=True)
                continue
            raise InUseError(
                f"{path} is being written by another training run (remove {lock.name} if none is)"
            ) from None
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()} {socket.gethostname()}\n")
        return
    raise InUseError(f"{path} is being written by another training run")


def _stale(lock: Path) -> bool:
    """True if the lock names a process of this machine that no longer runs."""
    try:
        pid_text, host = lock.read_text().split()[:2]
        pid = int(pid_text)
    except (OSError, ValueError):
        return False  # unreadable or being written: assume it is live
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def release(path: Path) -> None:
    lock_path(path).unlink(missing_ok=True)
