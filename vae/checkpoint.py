"""Self-describing checkpoints: safetensors weights plus JSON metadata, no pickle anywhere.

Layout: tensors ``model.<name>`` (and, for resuming, ``optim.<i>.<state>``); metadata keys
``format``, ``config`` (ModelConfig), ``train`` (TrainConfig), ``dataset``, ``history``,
``metrics``, ``optim`` (scalar optimizer state), all JSON strings.
A file someone sent cannot run code: we parse the safetensors header ourselves and never
call ``torch.load``.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .config import ConfigError, ModelConfig, TrainConfig
from .meta import FORMAT, MAX_FILE_BYTES, CheckpointError, atomic_write, read_metadata  # noqa: F401 (re-exported)
from .meta import json_meta as _json_meta
from .meta import read_header as _read_header
from .models import VAE, build_model


@dataclass
class Checkpoint:
    """Everything a checkpoint holds. ``optimizer`` is a torch optimizer state dict or None."""

    model: VAE
    config: ModelConfig
    train: TrainConfig | None = None
    dataset: dict[str, Any] = field(default_factory=dict)
    history: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, Any] | None = None


def _optimizer_tensors(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state dict into tensors and a JSON-able rest."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {"param_groups": state["param_groups"], "state": {}}
    for idx, st in state["state"].items():
        scalars["state"][str(idx)] = {}
        for key, val in st.items():
            if torch.is_tensor(val):
                tensors[f"optim.{idx}.{key}"] = val.detach().cpu().contiguous()
            else:
                scalars["state"][str(idx)][key] = val
    return tensors, scalars


def _optimizer_state(tensors: dict[str, torch.Tensor], scalars: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(k): dict(v) for k, v in scalars["state"].items()}
    for name, val in tensors.items():
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = val
    return {"state": state, "param_groups": scalars["param_groups"]}


def save(
    path: str | Path,
    model: VAE,
    *,
    train: TrainConfig | None = None,
    dataset: dict[str, Any] | None = None,
    history: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    optimizer: torch.optim.Optimizer | dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically: a temporary file in the same folder, fsync, rename.

    A crash at any point leaves the previous file at ``path`` whole.
    """
    path = Path(path)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {
        "format": FORMAT,
        "config": json.dumps(model.config.to_dict()),
        "train": json.dumps(train.to_dict() if train else None),
        "dataset": json.dumps(dataset or {}),
        "history": json.dumps(history or {}),
        "metrics": json.dumps(metrics or {}),
    }
    if optimizer is not None:
        state = optimizer.state_dict() if isinstance(optimizer, torch.optim.Optimizer) else optimizer
        opt_tensors, scalars = _optimizer_tensors(state)
        tensors.update(opt_tensors)
        meta["optim"] = json.dumps(scalars)
    data = st_save(tensors, metadata=meta)
    atomic_write(path, lambda f: f.write(data))
    return path


def load_checkpoint(source: str | Path | bytes, name: str | None = None, device: str = "cpu") -> Checkpoint:
    """Read and validate a checkpoint from a path or bytes; raise CheckpointError if unusable."""
    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), name or "the uploaded file"
    else:
        path = Path(source)
        name = name or path.name
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise CheckpointError(
                    f"{name} is {size / 2**20:.0f} MB, larger than the {MAX_FILE_BYTES // 2**20} MB allowed"
                )
            data = path.read_bytes()
        except OSError as e:
            raise CheckpointError(f"{name} cannot be read ({e.strerror or e})") from None

    header = _read_header(data, name)
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise CheckpointError(f"{name}: metadata is not an object")
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{name} is not a VAE explorer checkpoint of format {FORMAT} (found {meta.get('format')!r})"
        )
    for key, info in header.items():
        if key != "__metadata__" and (not isinstance(info, dict) or info.get("dtype") not in ("F32", "I64")):
            raise CheckpointError(f"{name}: tensor {key!r} has an unsupported dtype")
    try:
        config = ModelConfig.from_dict(_json_meta(meta, "config", name))
        train_d = _json_meta(meta, "train", name)
        train = TrainConfig.from_dict(train_d) if train_d else None
    except ConfigError as e:
        raise CheckpointError(f"{name}: {e}") from None

    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{name} is not a valid safetensors file ({e})") from None

    model = build_model(config, torch.Generator())  # its weights are replaced below
    expected = model.state_dict()
    weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"{name}: weights do not match the config"
            + (f"; missing {', '.join(missing[:3])}" if missing else "")
            + (f"; unexpected {', '.join(extra[:3])}" if extra else "")
        )
    for k, v in weights.items():
        if v.shape != expected[k].shape or v.dtype != expected[k].dtype:
            raise CheckpointError(
                f"{name}: tensor {k} has shape {tuple(v.shape)}, the config needs {tuple(expected[k].shape)}"
            )
        if not torch.isfinite(v).all():
            raise CheckpointError(f"{name}: tensor {k} holds NaN or infinite values")
    model.load_state_dict(weights)
    model.eval().to(device)

    optimizer = None
    scalars = _json_meta(meta, "optim", name)
    if scalars:
        try:
            optimizer = _optimizer_state({k: v for k, v in tensors.items() if k.startswith("optim.")}, scalars)
        except (KeyError, ValueError, TypeError, AttributeError):
            raise CheckpointError(f"{name}: optimizer state is malformed") from None

    return Checkpoint(
        model=model,
        config=config,
        train=train,
        dataset=_json_meta(meta, "dataset", name, {}) or {},
        history=_json_meta(meta, "history", name, {}) or {},
        metrics=_json_meta(meta, "metrics", name, {}) or {},
        optimizer=optimizer,
    )


# --------------------------------------------------------------------------- one writer per file


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
