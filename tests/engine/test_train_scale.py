"""What scales training beyond the in-memory default: folders streamed from disk, bf16 autocast,
torch.compile, and the masked loss that keeps a streamed batch's size when a file is unreadable."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image
from vae_helpers import state_copy, states_equal

import vae.datasets.folder
from vae.cli import train_main as main
from vae.config import ModelConfig, TrainConfig
from vae.data import load_folder
from vae.meta import read_metadata
from vae.models import build_model
from vae.objectives import elbo_terms
from vae.train import _Batches, _Objective, fit

SIZE = 8


@pytest.fixture
def folder(tmp_path):
    """70 small grey PNGs in two labelled sub-folders (dark squares, light squares) and one broken file."""
    root = tmp_path / "images"
    g = torch.Generator().manual_seed(0)
    for label, level in (("dark", 40), ("light", 200)):
        (root / label).mkdir(parents=True)
        for i in range(35):
            noise = torch.randint(-30, 30, (SIZE, SIZE), generator=g)
            arr = (level + noise).clamp(0, 255).to(torch.uint8).numpy()
            Image.fromarray(arr, "L").save(root / label / f"{i:02d}.png")
    (root / "dark" / "broken.png").write_bytes(b"not a png at all")
    return root


def _cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"epochs": 2, "batch_size": 16, "seed": 1, "device": "cpu", "log_every": 1, **kw})


@pytest.mark.slow
def test_a_folder_over_the_budget_trains_from_disk(folder, monkeypatch):
    monkeypatch.setattr(vae.datasets.folder, "STREAM_PREVIEW", 0)  # no preview: the trainer meets the broken file
    data = load_folder(folder, size=SIZE, memory_budget_mb=0.0001, test_fraction=0.05)  # 71 x 256 B > 105 B
    broken = str(folder / "dark" / "broken.png")
    assert data.streamed and broken in data.train_stream.files and not data.skipped
    assert data.n_train + len(data.test_x) == 71
    model = build_model(ModelConfig(image_shape=(1, SIZE, SIZE), hidden=(16,), latent_dim=2))
    before = state_copy(model)
    history = fit(model, data, _cfg(workers=0))
    assert [e["epoch"] for e in history.epochs] == [1, 2] and history.error is None
    assert all(math.isfinite(e["loss"]) and math.isfinite(e["test_elbo"]) for e in history.epochs)
    assert not states_equal(before, state_copy(model))
    assert history.skipped == [broken]  # once, though read in both epochs
    # Every epoch runs n_train // batch steps of full batches, as the in-memory path does.
    assert len(history.steps) == 2 * (data.n_train // 16)


@pytest.mark.slow
def test_streaming_with_worker_processes_learns_like_the_in_memory_path(folder):
    streamed = load_folder(folder, size=SIZE, memory_budget_mb=0.0001)
    in_memory = load_folder(folder, size=SIZE)
    assert not in_memory.streamed
    results = []
    for data, workers in ((streamed, 2), (in_memory, None)):
        torch.manual_seed(0)
        model = build_model(ModelConfig(image_shape=(1, SIZE, SIZE), hidden=(16,), latent_dim=2))
        results.append(fit(model, data, _cfg(epochs=8, workers=workers, lr=3e-3)).epochs)
    for epochs in results:
        assert epochs[-1]["loss"] < epochs[0]["loss"]  # both learn
    # Same images, other order: the test ELBOs end close (the split is the same for a clean folder).
    assert results[0][-1]["test_elbo"] == pytest.approx(results[1][-1]["test_elbo"], rel=0.02)


@pytest.mark.slow
def test_the_cli_streams_and_records_it(folder, tmp_path, capsys):
    out = tmp_path / "stream.safetensors"
    args = ["--dataset", f"folder:{folder}", "--image-size", str(SIZE), "--hidden", "16", "--latent-dim", "2"]
    args += ["--epochs", "1", "--batch-size", "16", "--memory-budget", "0.0001", "--workers", "0"]
    assert main([*args, "--iwae-k", "0", "--quiet", "--out", str(out)]) == 0
    meta = read_metadata(out)
    assert meta["dataset"]["streamed"] is True and meta["dataset"]["n_train"] + meta["dataset"]["n_test"] == 70
    assert meta["train"]["memory_budget_mb"] == 0.0001 and meta["train"]["workers"] == 0
    assert "broken.png" in capsys.readouterr().err  # named by the loader's preview decode


def test_the_masked_loss_is_the_mean_over_the_readable_rows():
    torch.manual_seed(0)
    model = build_model(ModelConfig(image_shape=(1, SIZE, SIZE), hidden=(16,), latent_dim=2, beta=2.0))
    x = torch.rand(6, 1, SIZE, SIZE)
    weight = torch.tensor([1.0, 0, 1, 1, 0, 1])
    loss, recon, kl = _Objective(model)(x, weight, torch.Generator().manual_seed(5))
    t = elbo_terms(model, x, generator=torch.Generator().manual_seed(5))  # the same noise
    keep = weight.bool()
    assert torch.allclose(loss, -(t.recon[keep] - 2.0 * t.kl[keep]).mean())
    assert torch.allclose(recon, t.recon[keep].mean()) and torch.allclose(kl, t.kl[keep].mean())
    assert torch.allclose(_Objective(model)(x, None, torch.Generator().manual_seed(5))[0], t.loss)
    # A batch with nothing readable is a zero loss, not a NaN.
    assert _Objective(model)(x, torch.zeros(6))[0].item() == 0.0


def test_a_streamed_batch_with_a_broken_file_keeps_its_size(folder, monkeypatch):
    monkeypatch.setattr(vae.datasets.folder, "STREAM_PREVIEW", 0)
    data = load_folder(folder, size=SIZE, memory_budget_mb=0.0001, test_fraction=0.05)
    assert str(folder / "dark" / "broken.png") in data.train_stream.files
    batches = _Batches(data, _cfg(batch_size=7, workers=0), torch.device("cpu"))
    rows = list(batches.epoch(1, torch.Generator().manual_seed(0)))
    assert len(rows) == batches.steps == data.n_train // 7 and all(len(x) == 7 for x, *_ in rows)
    bad = [(w, n, b) for _, w, n, b in rows if b]
    assert len(bad) <= 1  # none when this epoch's ragged tail dropped it
    for w, n, b in bad:
        assert n == 6 and w.sum() == 6 and data.train_stream.path(b[0]).endswith("broken.png")


@pytest.mark.slow
def test_bf16_autocast_trains_and_keeps_fp32_weights(moons, tiny_cfg):
    results = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = build_model(tiny_cfg)
        history = fit(model, moons, _cfg(batch_size=64, precision=precision))
        assert all(p.dtype == torch.float32 for p in model.parameters())
        results[precision] = history.epochs[-1]["test_elbo"]
    assert math.isfinite(results["bf16"])
    assert results["bf16"] == pytest.approx(results["fp32"], rel=0.02)  # bf16 keeps ~3 significant digits


@pytest.mark.slow
def test_compile_gives_the_same_training(moons, tiny_cfg, monkeypatch):
    inductor = pytest.importorskip("torch._inductor.config")
    monkeypatch.setattr(inductor, "fallback_random", True)  # eager's random numbers, for a like-for-like check
    results = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        model = build_model(tiny_cfg)
        history = fit(model, moons, _cfg(batch_size=64, epochs=1, compile=compiled))
        results[compiled] = (history.epochs[-1]["loss"], state_copy(model))
    assert results[True][0] == pytest.approx(results[False][0], rel=1e-4)
    for k, v in results[False][1].items():
        assert torch.allclose(results[True][1][k], v, atol=1e-4), k


@pytest.mark.slow
def test_the_cli_says_bf16_is_for_gpus_and_refuses_other_precisions(tmp_path, capsys):
    args = ["--dataset", "digits", "--hidden", "8", "--latent-dim", "2", "--epochs", "1", "--batch-size", "500"]
    out = tmp_path / "bf16.safetensors"
    assert main([*args, "--device", "cpu", "--precision", "bf16", "--iwae-k", "0", "--quiet", "--out", str(out)]) == 0
    assert "meant for GPUs" in capsys.readouterr().err
    assert read_metadata(out)["train"]["precision"] == "bf16"
    with pytest.raises(SystemExit) as e:
        main([*args, "--precision", "fp16", "--out", str(tmp_path / "no.safetensors")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--precision" in err[0]


@pytest.mark.slow
def test_streaming_workers_from_a_thread_are_spawned(folder):
    """The app trains in a thread beside its server: its workers must not be forked."""
    import threading

    data = load_folder(folder, size=SIZE, memory_budget_mb=0.0001)
    model = build_model(ModelConfig(image_shape=(1, SIZE, SIZE), hidden=(16,), latent_dim=2))
    seen = {}

    def run():
        batches = _Batches(data, _cfg(workers=1), torch.device("cpu"))
        seen["context"] = batches.loader.multiprocessing_context.get_start_method()
        seen["history"] = fit(model, data, _cfg(epochs=1, workers=1))

    t = threading.Thread(target=run)
    t.start()
    t.join(120)
    assert seen["context"] == "spawn" and len(seen["history"].epochs) == 1
    assert _Batches(data, _cfg(workers=1), torch.device("cpu")).loader.multiprocessing_context is None
