"""Multi-process training: two Gloo processes on this machine under torchrun, CPU only.

Each launch starts two Python processes that import torch, so the module has few tests,
each doing several checks. The sharding and reduction logic is also unit-tested in-process.
"""

from __future__ import annotations

import json
import subprocess

import pytest
import torch
from safetensors.torch import load_file
from vae_helpers import ROOT, make_dataset, run_python, states_equal

from vae import distributed
from vae.checkpoint import load_checkpoint
from vae.config import ModelConfig, TrainConfig
from vae.meta import read_metadata
from vae.models import build_model
from vae.train import _Batches

TORCHRUN = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
SMALL = ["--dataset", "moons", "--device", "cpu", "--hidden", "16", "--latent-dim", "2", "--batch-size", "250"]


def _torchrun(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return run_python(*TORCHRUN, *args, timeout=timeout)


@pytest.mark.slow
def test_two_gloo_processes_end_with_identical_weights(tmp_path):
    r = _torchrun(str(ROOT / "tests" / "ddp_worker.py"), str(tmp_path))
    assert r.returncode == 0, r.stderr[-4000:]
    w0, w1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    assert states_equal(w0, w1)  # the ranks started from different weights (see ddp_worker.py)
    cfg = ModelConfig(hidden=(32,), latent_dim=4)
    for seed in (100, 101):
        torch.manual_seed(seed)
        assert not states_equal(build_model(cfg).state_dict(), w0)  # and both trained
    rec0, rec1 = (json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1))
    # Metrics are reduced over the ranks: the same everywhere (but the clocks).
    clocks = ("seconds", "train_seconds", "samples_per_s")
    assert rec0["history"]["epochs"][0]["samples_per_s"] > 0
    for h in (rec0["history"], rec1["history"]):
        h["epochs"] = [{k: v for k, v in e.items() if k not in clocks} for e in h["epochs"]]
    assert rec0["history"] == rec1["history"]
    # 1000 images, 500 a rank, batches of 50: 10 steps, logged every 3 and at the end.
    assert [s["step"] for s in rec0["history"]["steps"]] == [3, 6, 9, 10]
    assert rec0["callbacks"] == 5 and rec1["callbacks"] == 0  # 4 steps + 1 epoch, on rank 0 only
    epoch = rec0["history"]["epochs"][0]
    assert epoch["test_elbo"] < 0 and epoch["loss"] > 0
    ckpt = load_checkpoint(tmp_path / "model.safetensors")
    assert states_equal(ckpt.model.state_dict(), w0)

    # A streamed folder: 81 train files, 40 a rank, 4 steps of 10 a rank and epoch.
    s0, s1 = (json.loads((tmp_path / f"stream{i}.json").read_text()) for i in (0, 1))
    assert s0["streamed"] and s0["n_train"] == 81
    assert [s["step"] for s in s0["history"]["steps"]] == [4, 8]
    assert s0["history"]["epochs"][0]["loss"] == s1["history"]["epochs"][0]["loss"]
    assert states_equal(load_file(tmp_path / "stream0.safetensors"), load_file(tmp_path / "stream1.safetensors"))


@pytest.mark.slow
def test_torchrun_cli_trains_resumes_and_writes_one_checkpoint_the_app_loads(tmp_path):
    out = tmp_path / "ddp.safetensors"
    r = _torchrun("-m", "vae.train", *SMALL, "--epochs", "1", "--iwae-k", "0", "--quiet", "--out", str(out))
    assert r.returncode == 0, r.stderr[-4000:]
    assert r.stdout.count("saved ") == 1 and r.stdout.count("epoch 1/1") == 1  # rank 0 alone reports
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp.safetensors"]  # and writes; no lock left

    # The same format as a one-process run (the committed moons model's): loadable by the app.
    single = ROOT / "checkpoints" / "moons-vae.safetensors"
    ddp_meta, one_meta = read_metadata(out), read_metadata(single)
    assert ddp_meta.keys() == one_meta.keys()
    assert ddp_meta["config"].keys() == one_meta["config"].keys()
    assert ddp_meta["dataset"] == one_meta["dataset"]
    # Newer fields (precision, compile...) are added; the unused "extra" of older files is no longer written.
    assert ddp_meta["train"].keys() >= one_meta["train"].keys() - {"extra"}
    tensors, one = load_file(out), load_file(single)
    assert {k.split(".")[0] for k in tensors} == {k.split(".")[0] for k in one} | {"optim"}
    ckpt = load_checkpoint(out)
    assert len(ckpt.history["epochs"]) == 1 and ckpt.optimizer is not None
    # 6,000 moons over 2 ranks in batches of 250: 12 steps of 500 images (one process: 24 of 250).
    assert ckpt.history["steps"][-1]["step"] == 12

    r = _torchrun("-m", "vae.train", *SMALL, "--epochs", "2", "--iwae-k", "0", "--quiet", "--out", str(out), "--resume")
    assert r.returncode == 0, r.stderr[-4000:]
    assert r.stdout.count("resuming") == 1
    ckpt = load_checkpoint(out)
    assert [e["epoch"] for e in ckpt.history["epochs"]] == [1, 2]

    # A bad value: one message, from rank 0, and a failing exit status.
    r = _torchrun("-m", "vae.train", *SMALL, "--epochs", "0", "--quiet", "--out", str(tmp_path / "bad.safetensors"))
    assert r.returncode != 0
    assert r.stderr.count("epochs must be in 1..100000") == 1
    assert not (tmp_path / "bad.safetensors").exists()


@pytest.mark.parametrize("world", [1, 2, 3])
def test_each_rank_sees_its_own_shard_of_every_epoch(monkeypatch, world):
    x = torch.arange(100, dtype=torch.float32).view(100, 1, 1, 1)
    data = make_dataset(x, n_test=10)  # 90 training images
    cfg = TrainConfig(batch_size=8, device="cpu")
    monkeypatch.setattr(distributed, "world_size", lambda: world)
    shards = []
    for r in range(world):
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        batches = _Batches(data, cfg, torch.device("cpu"))
        # fit draws the order from a shuffle generator seeded alike on every rank
        epoch = list(batches.epoch(1, torch.Generator().manual_seed(7)))
        assert all(weight is None and n == 8 and not bad for _, weight, n, bad in epoch)
        rows = [xb.flatten().long().tolist() for xb, *_ in epoch]
        assert len(rows) == (90 // world) // 8
        shards.append([v for b in rows for v in b])
    seen = [v for s in shards for v in s]
    assert len(seen) == len(set(seen))  # disjoint
    assert all(len(s) == len(shards[0]) for s in shards)  # the same number of steps on every rank
    assert set(seen) <= set(range(90))


def test_helpers_are_plain_for_one_process():
    assert not distributed.active() and distributed.world_size() == 1 and distributed.is_main()
    assert distributed.decide(lambda: 3) == 3 and distributed.everywhere(lambda: 4) == 4
    t = torch.ones(2)
    assert torch.equal(distributed.all_reduce(t), torch.ones(2)) and distributed.union(["b", "a", "b"]) == ["a", "b"]
    with pytest.raises(KeyError):
        distributed.decide(lambda: {}["missing"])


def test_devices_under_torchrun(monkeypatch):
    from vae.train import TrainingError, resolve_device

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")  # never MPS: it has no distributed backend
        with pytest.raises(TrainingError, match="no CUDA GPU"):
            resolve_device("cuda")
    elif torch.cuda.device_count() >= 2:
        assert resolve_device("auto") == torch.device("cuda", 1)  # the GPU of LOCAL_RANK
    else:
        with pytest.raises(TrainingError, match="no GPU of its own"):
            resolve_device("auto")
    with pytest.raises(TrainingError, match="not on MPS"):
        resolve_device("mps")
    assert resolve_device("cpu") == torch.device("cpu")
