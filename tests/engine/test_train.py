import dataclasses
import math

import pytest
import torch
from vae_helpers import make_dataset, state_copy, states_equal

from vae.checkpoint import load_checkpoint, save
from vae.cli import default_out
from vae.config import ModelConfig, TrainConfig
from vae.meta import checkpoint_dir
from vae.models import build_model
from vae.train import History, Progress, TrainingError, fit, resolve_device, warmup_weight
from vae.train import test_metrics as split_metrics  # not collected as a test


def _fresh(cfg, seed=0):
    return build_model(cfg, torch.Generator().manual_seed(seed))


@pytest.mark.slow
def test_one_step_changes_every_parameter(moons, tiny_cfg):
    model = _fresh(tiny_cfg)
    before = state_copy(model)
    data = dataclasses.replace(moons, train_x=moons.train_x[:32])
    history = fit(model, data, TrainConfig(epochs=1, batch_size=32, lr=1e-3, device="cpu"))  # exactly one step
    after = model.state_dict()
    for k in before:
        assert not torch.equal(before[k], after[k]), f"{k} did not change"
        # One Adam step moves each weight by at most about lr.
        assert (before[k] - after[k]).abs().max() < 1.5e-3
    assert len(history.epochs) == 1 and history.error is None and not history.stopped
    state = history.optimizer_state
    assert state is not None and float(state["state"][0]["step"]) == 1.0


@pytest.mark.slow
def test_fit_is_reproducible(moons, tiny_cfg, train_cfg):
    a, b = _fresh(tiny_cfg), _fresh(tiny_cfg)
    ha, hb = fit(a, moons, train_cfg), fit(b, moons, train_cfg)
    assert states_equal(a.state_dict(), b.state_dict())
    timing = lambda k: "seconds" in k or k.endswith("_per_s")  # wall-clock measurements differ run to run
    strip = lambda h: [{k: v for k, v in e.items() if not timing(k)} for e in h.epochs]
    assert strip(ha) == strip(hb)
    # A different seed shuffles differently.
    c = _fresh(tiny_cfg)
    fit(c, moons, dataclasses.replace(train_cfg, seed=train_cfg.seed + 1))
    assert not states_equal(a.state_dict(), c.state_dict())


@pytest.mark.slow
def test_fit_leaves_the_global_rng_alone(moons, tiny_cfg, train_cfg):
    """Shuffles, noise and binarization come from fit's own generators: another thread's use of the
    global RNG neither disturbs a run nor is disturbed by it."""
    torch.manual_seed(42)
    before = torch.random.get_rng_state()
    binarized = dataclasses.replace(tiny_cfg, binarize=True)
    a = fit(_fresh(binarized), moons, train_cfg)
    assert torch.equal(torch.random.get_rng_state(), before)
    torch.manual_seed(7)  # a different global state: the same run
    b = fit(_fresh(binarized), moons, train_cfg)
    assert a.epochs[-1]["test_elbo"] == b.epochs[-1]["test_elbo"] and a.steps == b.steps


def test_kl_warmup_weight_rises_linearly_then_stays_at_one():
    cfg = TrainConfig(kl_warmup=2)
    assert [warmup_weight(cfg, 1, s, 4) for s in (1, 2, 4)] == [0.125, 0.25, 0.5]
    assert [warmup_weight(cfg, 2, 4, 4), warmup_weight(cfg, 3, 1, 4)] == [1.0, 1.0]
    assert warmup_weight(TrainConfig(), 1, 1, 4) == 1.0  # no warm-up


@pytest.mark.slow
def test_kl_warmup_weighs_the_kl_term_in_the_loss(moons, tiny_cfg, train_cfg):
    """During the warm-up the logged loss is -recon + beta * w * KL with w < 1; after it, -recon + beta * KL;
    without a warm-up the run is the same as before."""
    warm = dataclasses.replace(train_cfg, kl_warmup=1)
    a, b = _fresh(tiny_cfg), _fresh(tiny_cfg)
    ha, hb = fit(a, moons, warm), fit(b, moons, train_cfg)
    first_a, first_b = ha.steps[0], hb.steps[0]
    assert first_a["loss"] < -first_a["recon"] + first_a["kl"] - 1e-3  # the KL weighed by w < 1
    assert first_b["loss"] == pytest.approx(-first_b["recon"] + first_b["kl"], abs=1e-3)
    last = ha.steps[-1]  # epoch 2: past the warm-up
    assert last["loss"] == pytest.approx(-last["recon"] + last["kl"], abs=1e-3)
    assert not states_equal(a.state_dict(), b.state_dict())
    c = _fresh(tiny_cfg)
    fit(c, moons, dataclasses.replace(train_cfg, kl_warmup=0))
    assert states_equal(b.state_dict(), c.state_dict())


@pytest.mark.slow
def test_history_has_per_epoch_metrics(moons, tiny_cfg, train_cfg):
    model = _fresh(tiny_cfg)
    history = fit(model, moons, train_cfg)
    assert [e["epoch"] for e in history.epochs] == [1, 2]
    for e in history.epochs:
        for key in ("loss", "recon", "kl", "test_elbo", "test_recon", "test_kl", "seconds", "samples_per_s"):
            assert math.isfinite(e[key]), key
        assert e["test_elbo"] == pytest.approx(e["test_recon"] - e["test_kl"], abs=1e-3)
        assert e["loss"] == pytest.approx(-e["recon"] + e["kl"], rel=1e-4)  # beta = 1
        assert e["kl"] >= 0 and e["test_kl"] >= 0
    d = history.to_dict()
    assert "optimizer_state" not in d
    back = History.from_dict(d)
    assert back.epochs == history.epochs and back.steps == history.steps and back.error is None


@pytest.mark.slow
def test_training_improves_the_test_elbo(moons, tiny_cfg):
    model = _fresh(tiny_cfg)
    before = split_metrics(model, moons.test_x)["elbo"]
    history = fit(model, moons, TrainConfig(epochs=4, batch_size=32, lr=3e-3, seed=1, device="cpu"))
    after = history.epochs[-1]["test_elbo"]
    assert after > before + 50, (before, after)  # nats per image; an untrained decoder is far off
    torch.manual_seed(0)
    assert split_metrics(model, moons.test_x)["elbo"] == pytest.approx(after, abs=5.0)


@pytest.mark.slow
def test_callback_receives_progress(moons, tiny_cfg, train_cfg):
    seen: list[Progress] = []
    model = _fresh(tiny_cfg)
    history = fit(model, moons, train_cfg, callback=seen.append)
    assert all(isinstance(p, Progress) for p in seen)
    steps = [p for p in seen if p.phase == "step"]
    epochs = [p for p in seen if p.phase == "epoch"]
    # Every log_every = 2 of the 4 steps per epoch, and logged in the history too.
    assert [p.global_step for p in steps] == [2, 4, 6, 8]
    assert [s["step"] for s in history.steps] == [2, 4, 6, 8]
    assert [p.epoch for p in epochs] == [1, 2]
    for p in epochs:
        assert p.test is not None and set(p.test) >= {"elbo", "recon", "kl"}
        assert p.model is model and isinstance(p.optimizer, torch.optim.Optimizer)
        assert p.epochs == 2 and p.steps_per_epoch == 4
    for p in seen:
        assert math.isfinite(p.loss) and p.samples_per_s > 0 and p.eta_s >= 0
    assert epochs[-1].eta_s == 0


@pytest.mark.slow
def test_callback_returning_true_stops(moons, tiny_cfg, train_cfg):
    calls = []

    def stop_at_first(p):
        calls.append(p)
        return True

    model = _fresh(tiny_cfg)
    history = fit(model, moons, dataclasses.replace(train_cfg, epochs=3), callback=stop_at_first)
    assert history.stopped and history.error is None
    assert len(calls) == 1 and calls[0].phase == "step" and calls[0].global_step == 2
    assert history.epochs == []
    assert history.optimizer_state is not None
    assert float(history.optimizer_state["state"][0]["step"]) == 2.0  # stopped after that step


@pytest.mark.slow
def test_stop_at_an_epoch_end(moons, tiny_cfg, train_cfg):
    model = _fresh(tiny_cfg)
    history = fit(model, moons, dataclasses.replace(train_cfg, epochs=3), callback=lambda p: p.phase == "epoch")
    assert history.stopped and len(history.epochs) == 1
    # Stopping at the last epoch's end is not an early stop.
    model = _fresh(tiny_cfg)
    history = fit(model, moons, dataclasses.replace(train_cfg, epochs=1), callback=lambda p: p.phase == "epoch")
    assert not history.stopped and len(history.epochs) == 1


@pytest.mark.slow
def test_resume_equals_an_uninterrupted_run(tmp_path, moons, tiny_cfg, train_cfg):
    """2 epochs straight == 1 epoch, save, load, 1 more epoch (same shuffles, noise and Adam state)."""
    straight = _fresh(tiny_cfg)
    h_straight = fit(straight, moons, train_cfg)

    first = _fresh(tiny_cfg)
    h1 = fit(first, moons, dataclasses.replace(train_cfg, epochs=1))
    path = save(tmp_path / "r.safetensors", first, optimizer=h1.optimizer_state, history=h1.to_dict(), train=train_cfg)
    ckpt = load_checkpoint(path)
    h2 = fit(ckpt.model, moons, train_cfg, optimizer_state=ckpt.optimizer, history=History.from_dict(ckpt.history))

    assert [e["epoch"] for e in h2.epochs] == [1, 2]
    resumed, expected = ckpt.model.state_dict(), straight.state_dict()
    # Bit-exact on CPU: the same operations in the same order.
    assert states_equal(resumed, expected), max((resumed[k] - expected[k]).abs().max().item() for k in expected)
    assert h2.epochs[1]["test_elbo"] == h_straight.epochs[1]["test_elbo"]


@pytest.mark.slow
def test_resume_with_everything_done_is_a_no_op(moons, tiny_cfg, train_cfg):
    model = _fresh(tiny_cfg)
    history = fit(model, moons, train_cfg)
    before = state_copy(model)
    again = fit(model, moons, train_cfg, optimizer_state=history.optimizer_state, history=history)
    assert len(again.epochs) == 2 and states_equal(before, model.state_dict())


def _huge_data(n=72):
    """Gaussian-decoder data that overflows the loss at once."""
    torch.manual_seed(0)
    return make_dataset(torch.rand(n, 1, 4, 4) * 1e30, n_test=8)


@pytest.mark.slow
def test_divergence_sets_error_and_keeps_finite_weights():
    cfg = ModelConfig(image_shape=(1, 4, 4), hidden=(8,), latent_dim=2, likelihood="gaussian")
    model = _fresh(cfg)
    before = state_copy(model)
    history = fit(model, _huge_data(), TrainConfig(epochs=2, batch_size=16, lr=1e-3, device="cpu"))
    assert history.error is not None and "epoch 1" in history.error
    assert history.epochs == [] and not history.stopped
    for k, v in model.state_dict().items():
        assert torch.isfinite(v).all(), k
    assert states_equal(before, model.state_dict())  # the last finished epoch: the initial weights
    # Adam's moments are those of the last finished epoch too, so a resume does not diverge at once.
    for st in history.optimizer_state["state"].values():
        for v in st.values():
            assert not torch.is_tensor(v) or torch.isfinite(v).all()


@pytest.mark.slow
def test_divergence_in_a_later_epoch_restores_the_last_finished_epoch(moons, tiny_cfg, train_cfg):
    """Poison the weights after epoch 1 (through the callback): epoch 2's first step gives a NaN loss."""
    model = _fresh(tiny_cfg)
    snapshot = {}

    def poison(p):
        if p.phase == "epoch" and p.epoch == 1:
            snapshot.update(state_copy(p.model))
            with torch.no_grad():
                p.model.to_stats.weight.fill_(float("inf"))
        return False

    history = fit(model, moons, dataclasses.replace(train_cfg, epochs=3), callback=poison)
    assert history.error is not None and "epoch 2" in history.error
    assert len(history.epochs) == 1
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())
    assert states_equal(snapshot, model.state_dict())
    moments = [v for st in history.optimizer_state["state"].values() for v in st.values() if torch.is_tensor(v)]
    assert moments and all(torch.isfinite(v).all() for v in moments)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(TrainingError, match="CUDA"):
            resolve_device("cuda")


@pytest.mark.slow
def test_binarized_training_runs(moons):
    cfg = ModelConfig(hidden=(16,), latent_dim=2, binarize=True, mc_samples=2)
    model = _fresh(cfg)
    before = state_copy(model)
    history = fit(model, moons, TrainConfig(epochs=1, batch_size=128, device="cpu"))
    assert history.error is None and math.isfinite(history.epochs[0]["test_elbo"])
    assert not states_equal(before, model.state_dict())


@pytest.mark.slow
def test_ae_training(moons):
    model = _fresh(ModelConfig(kind="ae", hidden=(16,), latent_dim=2))
    history = fit(model, moons, TrainConfig(epochs=1, batch_size=64, device="cpu"))
    assert history.epochs[0]["kl"] == 0 and history.epochs[0]["test_kl"] == 0


def test_default_out():
    cfg = ModelConfig(arch="conv", hidden=(8,), latent_dim=16)
    assert default_out("moons", cfg) == checkpoint_dir() / "moons-vae-conv-z16.safetensors"
    assert default_out("folder:/data/my photos/", cfg).name == "my-photos-vae-conv-z16.safetensors"
