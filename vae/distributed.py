"""Multi-process training with PyTorch's launcher: ``torchrun`` sets RANK, WORLD_SIZE, LOCAL_RANK
and the rendezvous, this module joins the process group (NCCL on CUDA, Gloo on CPU).

A run not started by torchrun is one process: every helper here then does the plain thing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def launched() -> bool:
    """True when torchrun (or any launcher setting WORLD_SIZE > 1) started this process."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """Rank 0: the process that logs, writes checkpoints and prints."""
    return rank() == 0


def env_rank() -> int:
    """This process's rank from the environment, before the process group exists."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def start(device: torch.device) -> None:
    """Join the process group torchrun describes: NCCL for CUDA devices, Gloo otherwise."""
    if not launched() or active():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")


def stop() -> None:
    """Leave the process group, every rank together: a rank that tears Gloo down while another still
    evaluates and writes (rank 0, after the last epoch) could abort at exit ("terminate called without
    an active exception", 5 of 24 two-process runs here)."""
    if active():
        dist.barrier()
        dist.destroy_process_group()


def decide(fn: Callable[[], T]) -> T:
    """Rank 0 runs ``fn`` (say, reads a checkpoint file) and every rank gets its result, or its
    exception raised again, so all ranks take the same branch."""
    if world_size() == 1:
        return fn()
    box: list[Any] = [None]
    if is_main():
        try:
            box[0] = (True, fn())
        except Exception as e:  # handed to every rank below
            box[0] = (False, e)
    dist.broadcast_object_list(box, src=0)
    ok, value = box[0]
    if not ok:
        raise value
    return value


def everywhere(fn: Callable[[], T]) -> T:
    """Every rank runs ``fn`` (say, loads its data); if any rank fails, every rank raises the
    first failure, named by its rank, instead of the others waiting for it forever."""
    if world_size() == 1:
        return fn()
    try:
        value, error = fn(), None
    except Exception as e:
        value, error = None, e
    errors: list[Any] = [None] * world_size()
    dist.all_gather_object(errors, error)
    for r, e in enumerate(errors):
        if e is not None:
            if r == rank():
                raise e
            try:
                raise type(e)(f"rank {r}: {e}")
            except TypeError:  # an exception class whose constructor wants more than a message
                raise RuntimeError(f"rank {r}: {e}") from None
    return value  # type: ignore[return-value]


def all_reduce(t: torch.Tensor) -> torch.Tensor:
    """The sum over all ranks, in place (a no-op for one process)."""
    if world_size() > 1:
        dist.all_reduce(t)
    return t


def broadcast(t: torch.Tensor) -> torch.Tensor:
    """Rank 0's value of ``t`` on every rank, in place."""
    if world_size() > 1:
        dist.broadcast(t, src=0)
    return t


def union(items: list[str]) -> list[str]:
    """The sorted union of every rank's list (say, files a rank could not read)."""
    if world_size() == 1:
        return sorted(set(items))
    lists: list[Any] = [None] * world_size()
    dist.all_gather_object(lists, items)
    return sorted({item for part in lists for item in part})
