import json
import os
import pickle
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from vae_helpers import state_copy, states_equal

import vae.checkpoint
from vae.checkpoint import FORMAT, CheckpointError, load_checkpoint, read_metadata, save
from vae.config import ModelConfig, TrainConfig
from vae.models import build_model
from vae.train import fit


def _model(**kw):
    torch.manual_seed(0)
    return build_model(ModelConfig(**{"image_shape": (1, 4, 4), "hidden": (8,), "latent_dim": 2, **kw}))


def _rewrite(path, tensors=None, **meta_changes):
    """Rewrite a saved checkpoint with some metadata entries (JSON-encoded) replaced."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    meta = json.loads(raw[8 : 8 + n])["__metadata__"]
    for k, v in meta_changes.items():
        meta[k] = v if isinstance(v, str) else json.dumps(v)
    path.write_bytes(st_save(tensors if tensors is not None else st_load(raw), metadata=meta))


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize(
    "cfg",
    [
        {},
        {"kind": "ae"},
        {"likelihood": "gaussian", "learn_sigma": True, "sigma": 0.2},
        {"arch": "conv", "image_shape": (3, 32, 32), "hidden": (4, 8), "latent_dim": 5},
    ],
)
def test_round_trip_is_bit_exact(tmp_path, cfg):
    model = _model(**cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    train = TrainConfig(dataset="digits", epochs=3, seed=5)
    dataset = {"name": "digits", "image_shape": list(model.config.image_shape)}
    history = {"epochs": [{"epoch": 1, "loss": 1.5}], "steps": [], "stopped": False, "error": None}
    metrics = {"elbo": -1.25, "iwae": None}
    path = save(
        tmp_path / "sub" / "m.safetensors", model, train=train, dataset=dataset, history=history, metrics=metrics
    )
    assert path.exists()
    ckpt = load_checkpoint(path)
    assert ckpt.config == model.config
    assert ckpt.train == train
    assert ckpt.dataset == dataset and ckpt.history == history and ckpt.metrics == metrics
    assert ckpt.optimizer is None
    assert states_equal(ckpt.model.state_dict(), model.state_dict())
    assert type(ckpt.model) is type(model) and not ckpt.model.training
    # From bytes.
    assert states_equal(load_checkpoint(path.read_bytes()).model.state_dict(), model.state_dict())


@pytest.mark.slow
def test_optimizer_state_round_trip(tmp_path, moons, tiny_model, train_cfg):
    history = fit(tiny_model, moons, train_cfg)
    path = save(tmp_path / "m.safetensors", tiny_model, optimizer=history.optimizer_state, train=train_cfg)
    saved = history.optimizer_state
    loaded = load_checkpoint(path).optimizer
    assert loaded is not None
    assert loaded["state"].keys() == saved["state"].keys()
    for idx, st in saved["state"].items():
        assert loaded["state"][idx].keys() == st.keys()
        for key, val in st.items():
            assert torch.equal(loaded["state"][idx][key], val), (idx, key)
    assert loaded["param_groups"][0]["lr"] == saved["param_groups"][0]["lr"]
    assert loaded["param_groups"][0]["params"] == saved["param_groups"][0]["params"]
    # It loads into a fresh Adam.
    opt = torch.optim.Adam(tiny_model.parameters(), lr=1.0)
    opt.load_state_dict(loaded)
    assert opt.param_groups[0]["lr"] == train_cfg.lr


def test_defaults_for_missing_metadata(tmp_path):
    path = save(tmp_path / "m.safetensors", _model())
    ckpt = load_checkpoint(path)
    assert ckpt.train is None and ckpt.dataset == {} and ckpt.history == {} and ckpt.metrics == {}


def test_read_metadata_without_weights(tmp_path):
    model = _model()
    train = TrainConfig(epochs=2)
    path = save(tmp_path / "m.safetensors", model, train=train, dataset={"name": "moons"}, metrics={"elbo": -3.5})
    meta = read_metadata(path)
    assert ModelConfig.from_dict(meta["config"]) == model.config
    assert TrainConfig.from_dict(meta["train"]) == train
    assert meta["dataset"] == {"name": "moons"} and meta["metrics"] == {"elbo": -3.5}
    other = tmp_path / "other.safetensors"
    other.write_bytes(st_save({"w": torch.zeros(2)}))
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps({"a": 1}))
    for bad in (other, evil, tmp_path / "missing.safetensors"):
        with pytest.raises(CheckpointError):
            read_metadata(bad)


# --------------------------------------------------------------------------- refusals


@pytest.fixture
def saved(tmp_path):
    return save(tmp_path / "m.safetensors", _model(), train=TrainConfig())


def test_flipped_header_bytes(saved):
    raw = bytearray(saved.read_bytes())
    for i in range(12, 40):  # inside the JSON header
        raw[i] ^= 0xFF
    saved.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="m.safetensors"):
        load_checkpoint(saved)


def test_flipped_header_length(saved):
    raw = bytearray(saved.read_bytes())
    raw[5] ^= 0xFF  # the little-endian header length becomes enormous
    with pytest.raises(CheckpointError):
        load_checkpoint(bytes(raw))


@pytest.mark.parametrize("keep", [0, 5, 50, -8], ids=["empty", "5-bytes", "mid-header", "mid-tensors"])
def test_truncated_file(saved, keep):
    raw = saved.read_bytes()
    saved.write_bytes(raw[:keep] if keep >= 0 else raw[:keep])
    with pytest.raises(CheckpointError):
        load_checkpoint(saved)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="nope.safetensors"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_wrong_shape_tensor(tmp_path):
    path = save(tmp_path / "m.safetensors", _model(latent_dim=8))
    _rewrite(path, config=ModelConfig(image_shape=(1, 4, 4), hidden=(8,), latent_dim=4).to_dict())
    with pytest.raises(CheckpointError, match="shape"):
        load_checkpoint(path)


def test_missing_and_extra_tensors(tmp_path):
    path = save(tmp_path / "m.safetensors", _model())
    tensors = st_load(path.read_bytes())
    tensors.pop("model.to_stats.bias")
    tensors["model.surprise"] = torch.zeros(2)
    _rewrite(path, tensors=tensors)
    with pytest.raises(CheckpointError, match="to_stats.bias"):
        load_checkpoint(path)


def test_non_finite_weights_are_refused(tmp_path):
    model = _model()
    with torch.no_grad():
        model.to_stats.weight[0, 0] = float("nan")
    path = save(tmp_path / "m.safetensors", model)
    with pytest.raises(CheckpointError, match="NaN"):
        load_checkpoint(path)


def test_unsupported_dtype_is_refused(tmp_path):
    path = save(tmp_path / "m.safetensors", _model())
    tensors = {k: v.double() for k, v in st_load(path.read_bytes()).items()}
    _rewrite(path, tensors=tensors)
    with pytest.raises(CheckpointError, match="dtype"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "meta",
    [
        {"format": "someone-else/1"},
        {"config": "{not json"},
        {"config": {"latent_dim": 4000}},
        {"config": {"bogus": 1}},
        {"train": {"epochs": -1}},
        {"train": {"device": 5}},  # a non-string device in the JSON must not escape as AttributeError
        {"optim": {"state": "nonsense"}},
    ],
    ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()),
)
def test_bad_metadata(saved, meta):
    _rewrite(saved, **meta)
    with pytest.raises(CheckpointError):
        load_checkpoint(saved)


def test_plain_safetensors_file_without_our_metadata(tmp_path):
    p = tmp_path / "other.safetensors"
    p.write_bytes(st_save({"w": torch.zeros(3)}))
    with pytest.raises(CheckpointError, match=FORMAT):
        load_checkpoint(p)


class _Payload:
    """Unpickling this creates a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_the_payload_is_live(tmp_path):
    """Sanity check of the test below: unpickling the payload does run code."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_Payload(marker))).close()
    assert marker.exists()


@pytest.mark.parametrize("how", ["torch.save", "pickle-2", "pickle-0"])
def test_pickle_files_are_refused_without_running_them(tmp_path, how):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.safetensors"
    payload = {"model.to_stats.weight": _Payload(marker)}
    if how == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=int(how[-1])))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path.read_bytes())
    assert not marker.exists()


# --------------------------------------------------------------------------- atomic save


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    old = _model()
    save(path, old)
    before = path.read_bytes()

    def crash(src, dst):
        raise OSError("disk on fire")

    new = _model(latent_dim=3)
    monkeypatch.setattr(vae.checkpoint.os, "replace", crash)
    with pytest.raises(OSError, match="disk on fire"):
        save(path, new)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.safetensors"]  # no temporary file left behind
    assert states_equal(load_checkpoint(path).model.state_dict(), state_copy(old))


def test_save_replaces_an_existing_file(tmp_path):
    path = tmp_path / "m.safetensors"
    save(path, _model())
    save(path, _model(latent_dim=3))
    assert load_checkpoint(path).config.latent_dim == 3
    assert os.listdir(tmp_path) == ["m.safetensors"]


def test_a_header_claiming_gigabytes_is_refused_without_reading_it(tmp_path):
    import struct
    import tracemalloc

    path = tmp_path / "huge-header.safetensors"
    path.write_bytes(struct.pack("<Q", 8 * 2**30) + b'{"__metadata__": {}}')
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="header length"):
            load_checkpoint(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20


def test_a_header_whose_length_starts_with_0x80_is_not_taken_for_a_pickle():
    # Little-endian lengths 0x80, 0x180, ... begin with the byte a pickle starts with.
    from vae.meta import read_header

    for n in (0x80, 0x1080):
        body = json.dumps({"__metadata__": {"pad": ""}}).encode()
        body = body[:-2] + b" " * (n - len(body)) + body[-2:]
        data = struct.pack("<Q", n) + body
        assert data[:1] == b"\x80" and read_header(data, "x")["__metadata__"] == {"pad": ""}
    with pytest.raises(CheckpointError, match="pickle"):
        read_header(b"\x80\x04\x95" + b"\x00" * 40, "x")


COMMITTED = sorted((Path(__file__).resolve().parents[2] / "checkpoints").glob("*.safetensors"))


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_committed_checkpoints_decode_as_recorded(path):
    """The committed files load and decode fixed codes as the code that wrote them did (values
    recorded before the engine was restructured; bit-for-bit equal when measured on one machine)."""
    ref = json.loads((Path(__file__).parent / "fixtures" / "committed_decodes.json").read_text())[path.stem]
    ckpt = load_checkpoint(path)
    d = ckpt.config.latent_dim
    with torch.no_grad():
        x = ckpt.model.decode(torch.linspace(-2, 2, 4 * d).reshape(4, d))
    torch.testing.assert_close(x.flatten(1)[:, ::97], torch.tensor(ref["rows"]), atol=1e-5, rtol=0)
    torch.testing.assert_close(x.sum((1, 2, 3)), torch.tensor(ref["sums"]), atol=1e-3, rtol=1e-6)


def test_a_lock_left_by_a_dead_process_is_taken_over_and_a_live_one_is_not(tmp_path):
    from vae.checkpoint import InUseError, lock_path, release, reserve

    path = tmp_path / "m.safetensors"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock_path(path).write_text(f"{int(dead.stdout)} {socket.gethostname()}\n")
    reserve(path)  # the killed run's lock does not block a resume
    assert lock_path(path).read_text().split()[0] == str(os.getpid())
    with pytest.raises(InUseError):
        reserve(path)  # this process is alive: its lock holds
    release(path)
    assert not lock_path(path).exists()


# --------------------------------------------------------------------------- committed checkpoints

ROOT = Path(__file__).resolve().parents[2]


def _strings(value):
    """Every string inside a parsed JSON value (keys and values)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _outside(text: str) -> bool:
    """Whether a metadata string names a path that is not inside the repository (a clone has nothing else)."""
    path = text.removeprefix("folder:")
    if path.startswith(("/", "~", "\\")) or (len(path) > 1 and path[1] == ":"):
        return True
    return ".." in Path(path).parts and not (ROOT / path).resolve().is_relative_to(ROOT)


def test_no_committed_checkpoint_names_a_path_outside_the_repository():
    paths = sorted((ROOT / "checkpoints").glob("*.safetensors"))
    assert any(p.name.startswith("mnist") for p in paths)
    for p in paths:
        meta = read_metadata(p)
        data_dir = (meta.get("train") or {}).get("data_dir")
        assert data_dir is None or not _outside(data_dir), f"{p.name} records data_dir {data_dir!r}"
        bad = [s for s in _strings(meta) if ("/" in s or "\\" in s) and _outside(s)]
        assert not bad, f"{p.name} names paths outside the repository: {bad[:3]}"


def test_outside_paths_are_recognised():
    assert _outside("../shared/data") and _outside("/work/shared") and _outside("folder:~/pics")
    assert _outside("C:\\data") and not _outside("T-shirt/top") and not _outside("data/MNIST")
