"""vae.run: one training run from configs to a scored checkpoint — the CLI and the Train page both run it."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from vae_helpers import make_dataset, states_equal

import vae.run
from vae.checkpoint import load_checkpoint
from vae.config import ModelConfig, TrainConfig
from vae.data import load_moons
from vae.evaluate import evaluate
from vae.run import RunSpec, run_training

pytestmark = pytest.mark.slow  # every test trains

MODEL = ModelConfig(hidden=(16,), latent_dim=2)


@pytest.fixture(scope="module")
def moons_1100():
    """Tiny moons with more test images (1,100) than the IWAE's default 1,000."""
    return load_moons(n_train=128, n_test=1100)


@pytest.fixture
def data(monkeypatch, moons_1100):
    monkeypatch.setattr(vae.run, "load_dataset", lambda *a, **k: moons_1100)
    return moons_1100


def train_cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"epochs": 2, "batch_size": 64, "seed": 3, "device": "cpu", "log_every": 1, **kw})


def test_a_run_saves_every_epoch_and_scores_by_one_rule(tmp_path, data):
    """Each epoch's checkpoint is on disk when the callback sees the epoch; at the end, the ELBO covers
    the whole test split and the IWAE its first iwae_n images; on_ready comes once, before any step."""
    out = tmp_path / "m.safetensors"
    events = []

    def on_ready(r):
        events.append(("ready", len(r.history.epochs), r.model_config.image_shape))

    def callback(p):
        if p.phase == "epoch":
            events.append(("epoch", p.epoch, len(load_checkpoint(out).history["epochs"])))
        return False

    spec = RunSpec(out, train_cfg(), MODEL, iwae_k=5, iwae_n=30)
    result = run_training(spec, callback, on_ready=on_ready)
    assert events == [("ready", 0, (1, 28, 28)), ("epoch", 1, 1), ("epoch", 2, 2)]
    assert not result.already_done and result.history.error is None and len(result.history.epochs) == 2
    m = result.metrics
    assert m["n"] == 1100 and m["iwae_k"] == 5 and m["iwae_n"] == 30
    assert m == evaluate(result.model, data.test_x, iwae_k=5, iwae_limit=30)
    ckpt = load_checkpoint(out)
    assert ckpt.metrics == m and ckpt.train == spec.train and ckpt.config == MODEL
    assert states_equal(ckpt.model.state_dict(), result.model.state_dict())
    assert ckpt.optimizer is not None and ckpt.dataset == data.info()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]  # no temporary file left


def test_the_default_iwae_covers_the_first_1000_test_images(tmp_path, data):
    result = run_training(RunSpec(tmp_path / "m.safetensors", train_cfg(epochs=1), MODEL, iwae_k=2))
    assert result.metrics["n"] == 1100 and result.metrics["iwae_n"] == 1000


def test_a_resumed_run_goes_on_where_it_stopped(tmp_path, data, monkeypatch):
    """Two epochs, then two more by resuming, train the weights four straight epochs do; the
    checkpoint's settings (seed, batch size) win over the caller's but for epochs and device."""
    straight = run_training(RunSpec(tmp_path / "a.safetensors", train_cfg(epochs=4), MODEL, iwae_k=0))
    out = tmp_path / "b.safetensors"
    run_training(RunSpec(out, train_cfg(epochs=2), MODEL, iwae_k=0))
    ready = []
    other = train_cfg(epochs=4, seed=99, batch_size=7)
    on_ready = lambda r: ready.append((len(r.history.epochs), r.optimizer_state is not None, r.train_config))
    resumed = run_training(RunSpec(out, other, resume=True, iwae_k=0), on_ready=on_ready)
    assert ready == [(2, True, train_cfg(epochs=4))]
    assert [e["epoch"] for e in resumed.history.epochs] == [1, 2, 3, 4]
    assert states_equal(resumed.model.state_dict(), straight.model.state_dict())
    assert resumed.metrics == straight.metrics

    # Nothing left to train: no data loaded, nothing written.
    monkeypatch.setattr(vae.run, "load_dataset", lambda *a, **k: pytest.fail("loaded the data"))
    before = out.read_bytes()
    done = run_training(RunSpec(out, other, resume=True))
    assert done.already_done and done.metrics is None and len(done.history.epochs) == 4
    assert out.read_bytes() == before


def test_without_optimizer_state_the_file_has_none(tmp_path, data):
    out = tmp_path / "m.safetensors"
    run_training(RunSpec(out, train_cfg(epochs=1), MODEL, iwae_k=0, keep_optimizer=False))
    assert load_checkpoint(out).optimizer is None


def test_a_stop_saves_the_weights_as_they_are_and_scores_them(tmp_path, data):
    out = tmp_path / "m.safetensors"
    result = run_training(RunSpec(out, train_cfg(epochs=50), MODEL, iwae_k=0), lambda p: p.global_step >= 3)
    assert result.history.stopped and len(result.history.epochs) == 1  # 2 steps an epoch: stopped in epoch 2
    ckpt = load_checkpoint(out)
    assert ckpt.metrics == result.metrics and result.metrics["n"] == 1100
    assert states_equal(ckpt.model.state_dict(), result.model.state_dict())


def test_a_diverged_run_keeps_its_last_good_epoch_and_is_not_scored(tmp_path, monkeypatch):
    good = torch.rand(64, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    data = make_dataset(good, n_test=8)
    monkeypatch.setattr(vae.run, "load_dataset", lambda *a, **k: data)
    cfg = ModelConfig(image_shape=(1, 4, 4), hidden=(8,), latent_dim=2, likelihood="gaussian")

    def poison(p):  # the run saved epoch 1 before this callback: then the data overflow the likelihood
        if p.phase == "epoch" and p.epoch == 1:
            data.train_x.mul_(1e30)
        return False

    out = tmp_path / "m.safetensors"
    result = run_training(RunSpec(out, TrainConfig(dataset="toy", epochs=3, batch_size=16, device="cpu"), cfg), poison)
    assert "loss became" in result.history.error and result.metrics is None
    ckpt = load_checkpoint(out)
    assert [e["epoch"] for e in ckpt.history["epochs"]] == [1] and ckpt.metrics == {}
    assert all(torch.isfinite(v).all() for v in ckpt.model.state_dict().values())


def test_on_ready_can_refuse_before_anything_is_written(tmp_path, data):
    class Refused(Exception):
        pass

    def refuse(r):
        raise Refused

    with pytest.raises(Refused):
        run_training(RunSpec(tmp_path / "m.safetensors", train_cfg(), MODEL), on_ready=refuse)
    assert list(tmp_path.iterdir()) == []


def test_a_resume_whose_data_do_not_fit_the_model_is_refused(tmp_path, data, monkeypatch):
    out = tmp_path / "m.safetensors"
    run_training(RunSpec(out, train_cfg(epochs=1), MODEL, iwae_k=0))
    small = dataclasses.replace(data, train_x=data.train_x[:, :, :14, :14], test_x=data.test_x[:, :, :14, :14])
    monkeypatch.setattr(vae.run, "load_dataset", lambda *a, **k: small)
    with pytest.raises(vae.run.DataError, match="the checkpoint's model needs"):
        run_training(RunSpec(out, train_cfg(epochs=2), resume=True))
