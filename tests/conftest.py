"""Shared fixtures: tiny seeded configs and data, CPU only, no network."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `pytest` (not `python -m pytest`) does not put the repo root on sys.path
    sys.path.insert(0, str(ROOT))

from vae.config import ModelConfig, TrainConfig  # noqa: E402
from vae.data import Dataset, load_moons  # noqa: E402
from vae.models import build_model  # noqa: E402

# Small thread pools: the suite runs next to other jobs on 2 slow cores.
torch.set_num_threads(1)

E2E = ROOT / "tests" / "e2e"


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every browser test (tests/e2e: a Streamlit server and Chromium) is slow, marked or not."""
    for item in items:
        if E2E in item.path.parents or item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Fail any attempt to open an internet connection (downloads must never happen)."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise OSError(f"network access in tests is not allowed (tried {address!r})")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setenv("VAE_DATA_DIR", os.devnull + "-no-such-data-dir")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def moons() -> Dataset:
    """A tiny moons data set: 256 train and 64 test images (1, 28, 28). Do not modify it."""
    return load_moons(n_train=256, n_test=64)


@pytest.fixture
def tiny_cfg() -> ModelConfig:
    """A small MLP VAE for 28x28 grey images."""
    return ModelConfig(image_shape=(1, 28, 28), hidden=(32,), latent_dim=2)


@pytest.fixture
def tiny_model(tiny_cfg):
    torch.manual_seed(0)
    return build_model(tiny_cfg)


@pytest.fixture
def train_cfg() -> TrainConfig:
    """Two short epochs on the tiny moons data (4 steps of 64 images each)."""
    return TrainConfig(epochs=2, batch_size=64, lr=1e-3, seed=3, device="cpu", log_every=2)
