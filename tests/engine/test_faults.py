"""Crashes: a process killed while saving keeps the previous checkpoint; a killed training run
resumes from its last saved epoch."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from vae_helpers import ROOT

from vae.checkpoint import load_checkpoint, save
from vae.config import ModelConfig
from vae.models import build_model

pytestmark = pytest.mark.slow  # each test starts Python processes that import torch


def test_kill_between_write_and_rename_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "m.safetensors"
    old = build_model(ModelConfig(image_shape=(1, 4, 4), hidden=(8,), latent_dim=2))
    save(path, old, metrics={"elbo": -1.0})
    before = path.read_bytes()
    script = textwrap.dedent(
        f"""
        import os, signal, torch
        from vae.checkpoint import save
        from vae.config import ModelConfig
        from vae.models import build_model
        torch.manual_seed(5)
        model = build_model(ModelConfig(image_shape=(1, 4, 4), hidden=(8,), latent_dim=2))
        os.replace = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)  # die after the write
        save({str(path)!r}, model, metrics={{"elbo": -2.0}})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    assert load_checkpoint(path).metrics == {"elbo": -1.0}


def test_a_killed_training_run_resumes_from_its_last_saved_epoch(tmp_path):
    out = tmp_path / "run.safetensors"
    args = [sys.executable, "-m", "vae.train", "--dataset", "moons", "--hidden", "32", "--latent-dim", "2"]
    args += ["--quiet", "--iwae-k", "0", "--out", str(out)]
    proc = subprocess.Popen([*args, "--epochs", "50"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while not out.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert out.exists(), proc.stderr.read().decode() if proc.poll() is not None else "no checkpoint in time"
        os.kill(proc.pid, signal.SIGKILL)  # mid-run, no chance to save
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    saved = len(load_checkpoint(out).history["epochs"])
    assert 1 <= saved < 50
    done = subprocess.run([*args, "--epochs", str(saved + 1), "--resume"], cwd=ROOT, capture_output=True, timeout=240)
    assert done.returncode == 0, done.stderr.decode()
    assert f"resuming {out} at epoch {saved + 1}" in done.stdout.decode()
    epochs = load_checkpoint(out).history["epochs"]
    assert [e["epoch"] for e in epochs] == list(range(1, saved + 2))
