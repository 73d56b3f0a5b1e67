"""What the benchmark scripts share: the machine's description and a child run with a time limit.

Torch-free on purpose: ``folder_stream.py``'s parent process must not import torch, or its peak RSS
would be carried into every child it measures.
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class BenchError(Exception):
    """A run failed or the benchmark cannot go on; the message says why in one line."""


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def run_limited(
    cmd: list[str], cwd: Path, env: dict[str, str], timeout: float | None, name: str
) -> tuple[int, str, str]:
    """Run ``cmd`` in a session of its own and return (exit status, stdout, stderr); past ``timeout``
    seconds the whole session (a launcher and its workers) is ended and BenchError raised."""
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout or None)
    except subprocess.TimeoutExpired:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
                proc.communicate(timeout=10)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        raise BenchError(f"the {name} did not finish within --timeout {timeout:.0f} s") from None
    return proc.returncode, stdout, stderr


def print_table(head: list[str], cells: list[tuple[str, ...]], markdown: bool = False) -> None:
    """Right-aligned columns, and the same rows as a Markdown table if asked."""
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    print("  " + "  ".join(h.rjust(w) for h, w in zip(head, widths)))
    for c in cells:
        print("  " + "  ".join(v.rjust(w) for v, w in zip(c, widths)))
    if markdown:
        print()
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for c in cells:
            print("| " + " | ".join(c) + " |")


def alternating(repeats: int, items: list) -> Iterator[tuple[int, Any]]:
    """(repeat, item) for every repeat, the items in turn forwards then backwards, so that a drift of the
    machine over the run (heat, another job) falls on each item alike."""
    for r in range(repeats):
        for item in items if r % 2 == 0 else items[::-1]:
            yield r, item


def run_line(r: int, line: str) -> None:
    """One run's figures, as it finishes."""
    print(f"  run {r + 1}: {line}", flush=True)
