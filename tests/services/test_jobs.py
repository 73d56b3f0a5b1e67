"""vae.jobs: background training jobs — finish, stop, fail, and refuse a name that is taken."""

from __future__ import annotations

import time

import pytest

from vae.checkpoint import load_checkpoint
from vae.config import ModelConfig, TrainConfig
from vae.jobs import RUNNING, JobError, JobManager

MODEL = ModelConfig(image_shape=(1, 28, 28), hidden=(16,), latent_dim=2)


def train_cfg(epochs: int = 1, dataset: str = "moons") -> TrainConfig:
    return TrainConfig(dataset=dataset, epochs=epochs, batch_size=128, lr=1e-3, seed=1, device="cpu", log_every=5)


@pytest.fixture
def trained(tmp_path, monkeypatch):
    """A private trained-checkpoint folder."""
    folder = tmp_path / "trained"
    monkeypatch.setenv("VAE_TRAINED_DIR", str(folder))
    return folder


def lock_of(path):
    return path.with_name(path.name + ".lock")


def wait_for(cond, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def finish(job, timeout: float = 180.0) -> None:
    job.wait(timeout)
    assert not job._thread.is_alive(), "the job did not finish in time"


def test_a_tiny_job_finishes_and_writes_a_loadable_checkpoint(trained):
    manager = JobManager()
    job = manager.start("tiny-1", MODEL, train_cfg(epochs=1))
    assert job.path == trained / "tiny-1.safetensors"
    assert manager.get(job.id) is job and manager.jobs() == [job]
    finish(job)
    assert job.status == "done", job.message
    assert not job.running and job.finished is not None
    assert job.message == "saved tiny-1.safetensors"
    assert not lock_of(job.path).exists()  # the reservation is released
    assert sorted(p.name for p in trained.iterdir()) == ["tiny-1.safetensors"]  # no temporary files left

    m = job.metrics
    assert m["elbo"] < 0 and m["iwae"] >= m["elbo"] - 1.0 and m["iwae_k"] == 100
    assert 0 <= m["active_units"] <= 2
    assert len(job.epochs) == 1 and job.steps and job.progress is not None
    assert set(job.previews) == {"originals", "reconstructions", "samples"}
    assert job.previews["samples"].shape == (8, 1, 28, 28)

    ckpt = load_checkpoint(job.path)
    assert ckpt.config.hidden == (16,) and ckpt.config.latent_dim == 2
    assert ckpt.dataset["name"] == "moons"
    assert ckpt.train is not None and ckpt.train.epochs == 1
    assert len(ckpt.history["epochs"]) == 1
    assert ckpt.metrics["elbo"] == pytest.approx(m["elbo"])
    assert ckpt.optimizer is not None

    # The name is taken now: by its file, in this manager and in a fresh one (a restarted server).
    for mgr in (manager, JobManager()):
        with pytest.raises(JobError, match="already exists"):
            mgr.start("tiny-1", MODEL, train_cfg())
    assert manager.jobs() == [job]


def test_stop_mid_run_saves_a_loadable_checkpoint(trained):
    manager = JobManager()
    job = manager.start("long-run", MODEL, train_cfg(epochs=500))
    wait_for(lambda: len(job.steps) >= 2 or not job.running)
    assert job.status == "running", job.message
    assert lock_of(job.path).exists()
    # While it runs its name is reserved, for this manager and any other (the lock file).
    for mgr in (manager, JobManager()):
        with pytest.raises(JobError):
            mgr.start("long-run", MODEL, train_cfg())
    job.stop()
    finish(job)
    assert job.status == "stopped", job.message
    assert "stopped early" in job.message
    assert not lock_of(job.path).exists()
    ckpt = load_checkpoint(job.path)
    assert len(ckpt.history["epochs"]) < 500
    assert ckpt.metrics.get("elbo") is not None
    assert len(manager.jobs()) == 1


def test_a_failing_job_reports_and_releases_its_name(trained, tmp_path):
    manager = JobManager()
    job = manager.start("no-data", MODEL, train_cfg(dataset=f"folder:{tmp_path / 'no-such-folder'}"))
    finish(job, 60)
    assert job.status == "failed"
    assert job.message and job.status not in RUNNING
    assert not job.path.exists() and not lock_of(job.path).exists()
    again = manager.start("no-data", MODEL, train_cfg(dataset=f"folder:{tmp_path / 'no-such-folder'}"))
    finish(again, 60)  # nothing was written, so the name could be used again
    assert again.status == "failed"
    assert [j.id for j in manager.jobs()] == [again.id, job.id]  # newest first


def test_a_lock_held_by_another_process_refuses_the_name(trained):
    trained.mkdir(parents=True)
    lock = trained / "busy.safetensors.lock"
    lock.touch()
    manager = JobManager()
    with pytest.raises(JobError, match="being trained"):
        manager.start("busy", MODEL, train_cfg())
    assert lock.exists()  # the other process's lock is left alone
    assert manager.jobs() == []


@pytest.mark.parametrize("name", ["../x", "/abs", "a/b", "", "x\x00y", "x" * 65])
def test_an_unsafe_name_is_refused_before_anything_is_written(trained, tmp_path, name):
    manager = JobManager()
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(ValueError):
        manager.start(name, MODEL, train_cfg())
    assert sorted(tmp_path.rglob("*")) == before
    assert manager.jobs() == []


def test_a_diverging_job_fails_with_a_clear_message_and_keeps_its_last_good_epoch(trained, monkeypatch):
    """Epoch 1 trains; then the data turn huge, the loss overflows in epoch 2, and the job stops
    with the reason while its file keeps epoch 1."""
    import torch
    from vae_helpers import make_dataset

    import vae.jobs

    good = torch.rand(64, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    data = make_dataset(good, n_test=8)
    monkeypatch.setattr(vae.jobs, "load_dataset", lambda *a, **k: data)
    cfg = ModelConfig(image_shape=(1, 4, 4), hidden=(8,), latent_dim=2, likelihood="gaussian")

    def poison(p):  # after epoch 1 is saved, the next batches overflow the Gaussian likelihood
        if p.phase == "epoch" and p.epoch == 1:
            data.train_x.mul_(1e30)
        return False

    # Wrap the job's own callback: fit calls it, and it saves the epoch before we poison the data.
    real_fit = vae.jobs.fit
    monkeypatch.setattr(vae.jobs, "fit", lambda m, d, c, cb, **k: real_fit(m, d, c, lambda p: cb(p) or poison(p), **k))
    job = JobManager().start("diverges", cfg, TrainConfig(dataset="toy", epochs=3, batch_size=16, device="cpu"))
    finish(job, 120)
    assert job.status == "failed" and "loss became" in job.message and "epoch 2" in job.message
    ckpt = load_checkpoint(job.path)
    assert [e["epoch"] for e in ckpt.history["epochs"]] == [1]
    assert all(torch.isfinite(v).all() for v in ckpt.model.state_dict().values())
    assert not lock_of(job.path).exists()
