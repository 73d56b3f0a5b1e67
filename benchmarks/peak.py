"""The CPU's measured float32 matmul peak, the yardstick the speed benchmarks quote their FLOP/s against
(a module of its own: ``common.py`` stays torch-free)."""

from __future__ import annotations

import time

import torch


def matmul_peak(n: int = 3072, reps: int = 5) -> float:
    """Best fp32 ``torch.mm`` rate of two n x n matrices over ``reps`` runs, GFLOP/s, with the current threads."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9
