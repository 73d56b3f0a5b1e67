"""services.jobs: background training jobs on the one runner — finish, stop, fail, dismiss, and refuse a
name that is taken; and the settings check that runs before any job starts."""

from __future__ import annotations

import threading
import time

import pytest
from vae_helpers import start_endless, states_equal

from services.jobs import ACTIVE, FINISHED, Job, JobError, JobManager, Runner, TrainingJob
from services.training import SettingsError, build_configs, data_inputs, start_training
from vae.checkpoint import load_checkpoint
from vae.config import ModelConfig, TrainConfig
from vae.data import MNIST_FILES, load_moons

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


@pytest.mark.slow
def test_a_tiny_job_finishes_and_writes_a_loadable_checkpoint(trained):
    manager = JobManager()
    job = manager.start("tiny-1", MODEL, train_cfg(epochs=1))
    assert job.path == trained / "tiny-1.safetensors"
    assert isinstance(job, TrainingJob) and manager.jobs() == [job] and job.id == job.key
    finish(job)
    assert job.state == "done", job.message
    assert not job.active and job.done and job.finished is not None
    assert job.progress == 1.0 and job.result == job.metrics and not job.stopped and job.error is None
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


@pytest.mark.slow
def test_stop_mid_run_saves_a_loadable_checkpoint(trained):
    manager = JobManager()
    job = manager.start("long-run", MODEL, train_cfg(epochs=500))
    wait_for(lambda: len(job.steps) >= 2 or not job.active)
    assert job.state == "running", job.message
    assert 0 < job.progress < 1 and job.latest is not None
    assert lock_of(job.path).exists()
    # While it runs its name is reserved, for this manager and any other (the lock file).
    for mgr in (manager, JobManager()):
        with pytest.raises(JobError):
            mgr.start("long-run", MODEL, train_cfg())
    assert not manager.dismiss(job.id)  # a running job cannot be dismissed
    job.cancel()
    finish(job)
    assert job.state == "done" and job.stopped, job.message  # stopped early: saved, so done
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
    assert job.state == "error" and job.error == job.message
    assert job.message and job.state not in ACTIVE and job.state in FINISHED
    assert job.message.startswith("DataError:") and "does not exist" in job.message
    assert not job.path.exists() and not lock_of(job.path).exists()
    again = manager.start("no-data", MODEL, train_cfg(dataset=f"folder:{tmp_path / 'no-such-folder'}"))
    finish(again, 60)  # nothing was written, so the name could be used again
    assert again.state == "error"
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


@pytest.mark.slow
def test_a_diverging_job_fails_with_a_clear_message_and_keeps_its_last_good_epoch(trained, monkeypatch):
    """Epoch 1 trains; then the data turn huge, the loss overflows in epoch 2, and the job stops
    with the reason while its file keeps epoch 1."""
    import torch
    from vae_helpers import make_dataset

    import vae.run

    good = torch.rand(64, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    data = make_dataset(good, n_test=8)
    monkeypatch.setattr(vae.run, "load_dataset", lambda *a, **k: data)
    cfg = ModelConfig(image_shape=(1, 4, 4), hidden=(8,), latent_dim=2, likelihood="gaussian")

    def poison(p):  # after epoch 1 is saved, the next batches overflow the Gaussian likelihood
        if p.phase == "epoch" and p.epoch == 1:
            data.train_x.mul_(1e30)
        return False

    # Wrap the run's own callback: fit calls it, and it saves the epoch before we poison the data.
    real_fit = vae.run.fit
    monkeypatch.setattr(vae.run, "fit", lambda m, d, c, cb, **k: real_fit(m, d, c, lambda p: cb(p) or poison(p), **k))
    job = JobManager().start("diverges", cfg, TrainConfig(dataset="toy", epochs=3, batch_size=16, device="cpu"))
    finish(job, 120)
    assert job.state == "error" and "loss became" in job.message and "epoch 2" in job.message
    assert job.error == job.message  # the trainer's own words, no exception name in front
    ckpt = load_checkpoint(job.path)
    assert [e["epoch"] for e in ckpt.history["epochs"]] == [1]
    assert all(torch.isfinite(v).all() for v in ckpt.model.state_dict().values())
    assert not lock_of(job.path).exists()


@pytest.mark.slow
def test_the_cli_and_the_train_page_train_the_same_model_with_the_same_card_numbers(trained, tmp_path, monkeypatch):
    """Both run vae.run.run_training: same weights, and the end-of-run metrics by one rule — the ELBO on
    the whole test split (1,100 images here, where the page used to score the first 1,000), the IWAE
    (k=100) on its first 1,000."""
    import vae.run
    from vae.cli import train_main

    data = load_moons(n_train=128, n_test=1100)
    monkeypatch.setattr(vae.run, "load_dataset", lambda *a, **k: data)
    cfg = TrainConfig(dataset="moons", epochs=1, batch_size=64, seed=3, device="cpu")
    job = JobManager().start("same", MODEL, cfg)
    finish(job)
    assert job.state == "done", job.message
    out = tmp_path / "cli.safetensors"
    argv = ["--dataset", "moons", "--hidden", "16", "--latent-dim", "2", "--epochs", "1", "--batch-size", "64"]
    assert train_main([*argv, "--seed", "3", "--device", "cpu", "--quiet", "--out", str(out)]) == 0
    cli, app = load_checkpoint(out), load_checkpoint(job.path)
    assert cli.config == app.config == job.model_config and cli.train == app.train == cfg
    assert states_equal(cli.model.state_dict(), app.model.state_dict())
    assert cli.metrics == app.metrics == job.metrics
    assert job.metrics["n"] == 1100 and job.metrics["iwae_n"] == 1000 and job.metrics["iwae_k"] == 100


# --------------------------------------------------------------------------- one runner, one vocabulary


def test_training_jobs_run_on_the_generic_runner_with_its_states():
    runner = Runner(workers=None, keep=None)
    gates = [threading.Event(), threading.Event()]
    jobs = [runner.submit(f"k{i}", lambda report, g=g: g.wait(10) and "ok") for i, g in enumerate(gates)]
    wait_for(lambda: all(j.state == "running" for j in jobs))  # no worker limit: both run at once
    assert all(j.active and not j.done for j in jobs)
    assert runner.jobs() == jobs[::-1]  # newest first
    assert not runner.forget("k0")  # an active job is not forgotten
    with pytest.raises(JobError, match="exists"):
        runner.start(Job("k0"), lambda report: None)
    for g in gates:
        g.set()
    assert all(j.wait(10) and j.state == "done" and j.result == "ok" and j.message == "done" for j in jobs)
    assert set(ACTIVE) | set(FINISHED) == {"queued", "running", "done", "cancelled", "error"}
    assert runner.forget("k0") and runner.jobs() == [jobs[1]]


def test_a_failed_run_can_be_dismissed_and_its_name_reused(trained, tmp_path):
    manager = JobManager()
    job = manager.start("gone", MODEL, train_cfg(dataset=f"folder:{tmp_path / 'nothing'}"))
    finish(job, 60)
    assert job.state == "error"
    assert manager.dismiss(job.id) and manager.jobs() == []
    assert not manager.dismiss(job.id) and not manager.dismiss("no-such-id")


def test_stop_while_the_data_load_cancels_the_run_and_frees_its_name(trained, monkeypatch, moons):
    import vae.run

    loading, go_on = threading.Event(), threading.Event()

    def slow_load(*args, **kwargs):
        loading.set()
        go_on.wait(30)
        return moons

    monkeypatch.setattr(vae.run, "load_dataset", slow_load)
    manager = JobManager()
    job = manager.start("early", MODEL, train_cfg())
    assert loading.wait(30)
    assert job.state == "running" and job.message.startswith("loading moons") and job.latest is None
    job.cancel()
    go_on.set()
    finish(job, 60)
    assert job.state == "cancelled" and job.message == "cancelled" and job.result is None
    assert not job.path.exists() and not lock_of(job.path).exists()
    assert manager.dismiss(job.id)


# --------------------------------------------------------------------------- the settings, checked before a job starts


def settings(**over) -> dict:
    """What the Train form sends for a small run (see pages/1_Train.py)."""
    return {"epochs": 1, "batch_size": 128, "lr": 1e-3, "seed": 1, "hidden": "16", "latent_dim": 2, **over}


def png_folder(root, n: int = 2):
    from PIL import Image

    (root / "cats").mkdir(parents=True)
    for i in range(n):
        Image.new("L", (8, 8), 40 * i).save(root / "cats" / f"{i}.png")
    return root


def test_settings_build_both_configs():
    model, train = build_configs("digits", settings(kind="ae", beta=2, likelihood="gaussian", learn_sigma=True))
    assert model == ModelConfig(
        kind="ae", hidden=(16,), latent_dim=2, beta=2.0, likelihood="gaussian", learn_sigma=True
    )
    assert isinstance(model.beta, float)
    assert train == TrainConfig(dataset="digits", epochs=1, batch_size=128, lr=1e-3, seed=1, log_every=5)


def test_a_folder_with_images_passes(tmp_path):
    folder = png_folder(tmp_path / "pics")
    model, train = build_configs("image folder", settings(folder=f" {folder} ", image_size=64, channels=3))
    assert train.dataset == f"folder:{folder}" and train.data_dir is None
    assert model.image_shape == (3, 64, 64)


@pytest.mark.parametrize(
    "make,needle",
    [
        (lambda root: None, "does not exist"),
        (lambda root: root.mkdir(), "holds no images"),
        (lambda root: (root / "sub").mkdir(parents=True) or (root / "sub" / "notes.txt").write_text("x"), "no images"),
        (lambda root: png_folder(root, n=1), "only one image"),
        (lambda root: root.write_text("a file"), "is a file, not a folder"),
    ],
    ids=["missing", "empty", "no-image-files", "one-image", "a-file"],
)
def test_a_folder_that_cannot_train_is_refused_in_one_message(tmp_path, make, needle):
    root = tmp_path / "data"
    make(root)
    with pytest.raises(SettingsError) as e:
        build_configs("image folder", settings(folder=str(root)))
    assert needle in str(e.value) and str(root) in str(e.value) and "--" not in str(e.value)


def test_a_blank_folder_is_refused():
    with pytest.raises(SettingsError, match="give the image folder's path"):
        build_configs("image folder", settings(folder="  "))


@pytest.mark.parametrize("hidden", ["abc", "12,,x", "32,abc", "0", ""])
def test_hidden_sizes_that_are_not_sizes_are_refused(hidden):
    with pytest.raises(SettingsError, match="^Hidden sizes must be positive whole numbers separated by commas"):
        build_configs("moons", settings(hidden=hidden))


def test_config_errors_name_the_option_in_words():
    with pytest.raises(SettingsError, match=r"^Latent size must be in 2\.\.128, got 500$"):
        build_configs("moons", settings(latent_dim=500))
    with pytest.raises(SettingsError, match=r"^Learning rate must be in \(0, 10\], got 0\.0$"):
        build_configs("moons", settings(lr=0.0))
    with pytest.raises(SettingsError, match="conv needs square images"):
        build_configs("image folder", settings(arch="conv", folder="x", image_size=30))


@pytest.mark.parametrize(
    "dataset,shown,sub", [("mnist", "MNIST", "MNIST"), ("fashion-mnist", "Fashion-MNIST", "FashionMNIST")]
)
def test_absent_mnist_files_are_refused_and_present_ones_pass(tmp_path, dataset, shown, sub):
    with pytest.raises(SettingsError) as e:
        build_configs(dataset, settings(data_dir=str(tmp_path)))
    msg = str(e.value)
    assert msg.startswith(f"{shown} files not found in {tmp_path}: {sub}/raw needs train-images-idx3-ubyte")
    assert "--" not in msg and "MNIST data folder" in msg
    with pytest.raises(SettingsError, match="default data folder"):  # blank: the default folder, also absent
        build_configs(dataset, settings(data_dir=""))
    raw = tmp_path / sub / "raw"
    raw.mkdir(parents=True)
    for i, f in enumerate(MNIST_FILES):
        (raw / (f if i % 2 else f"{f}.gz")).write_bytes(b"")  # unpacked or gzipped: both count
    _, train = build_configs(dataset, settings(data_dir=f" {tmp_path} "))
    assert train.dataset == dataset and train.data_dir == str(tmp_path)


def test_inputs_of_other_data_sets_are_ignored(tmp_path):
    _, train = build_configs("moons", settings(folder="/nowhere", data_dir="/nowhere", image_size=64))
    assert train.dataset == "moons" and train.data_dir is None
    assert data_inputs("moons") == data_inputs("digits") == ()
    assert data_inputs("image folder") == ("folder", "image_size", "channels")
    assert data_inputs("mnist") == data_inputs("fashion-mnist") == ("data_dir",)


def test_start_training_refuses_before_anything_is_written(trained, tmp_path):
    manager = JobManager()
    before = sorted(tmp_path.rglob("*"))
    for name, dataset, values in [
        ("ok-name", "image folder", settings(folder=str(tmp_path / "none"))),
        ("ok-name", "moons", settings(hidden="abc")),
        ("../x", "moons", settings()),
    ]:
        with pytest.raises(ValueError):
            start_training(name, dataset, values, manager=manager)
    assert manager.jobs() == [] and sorted(tmp_path.rglob("*")) == before
    job = start_training(" fine ", "moons", settings(), manager=manager)
    assert job.name == "fine" and manager.jobs() == [job]
    job.cancel()
    finish(job)


# --------------------------------------------------------------------------- the generic Runner (t-SNE maps use it)


def test_runner_runs_in_the_background_and_returns_the_result():
    runner = Runner()
    gate = threading.Event()

    def work(progress):
        progress(0.5, "half way")
        gate.wait(10)
        return 42

    job = runner.submit("k", work)
    assert not job.done and runner.submit("k", work) is job  # one job per key
    gate.set()
    assert job.wait(10)
    assert (job.state, job.result, job.progress, job.error) == ("done", 42, 1.0, None)
    assert runner.get("k") is job and job.elapsed >= 0


def test_runner_reports_errors_and_can_retry():
    runner = Runner()
    job = runner.submit("bad", lambda progress: 1 / 0)
    job.wait(10)
    assert job.state == "error" and "ZeroDivisionError" in job.error
    assert runner.submit("bad", lambda progress: 1) is not job  # a failed job is retried on submit
    runner.get("bad").wait(10)
    runner.forget("bad")
    assert runner.get("bad") is None


def test_runner_cancels_a_running_job():
    runner = Runner()
    job = start_endless(runner, "c")
    runner.cancel("c")
    assert job.wait(10) and job.state == "cancelled"
