"""What the browser is served for live decoding: the exported decoder file and the runtime's files."""

import shutil

import torch

from services import live
from vae.config import ModelConfig
from vae.models import build_model

ROOT_STATIC = live.STATIC


def _static(tmp_path):
    """A copy of the runtime files (not the big wasm: a stand-in of the same name) in a temp static/."""
    for f in (*live.RUNTIME, live.MODULE):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        src = ROOT_STATIC / f
        if src.stat().st_size < 2**20:
            shutil.copy(src, tmp_path / f)
        else:
            (tmp_path / f).write_bytes(b"\0asm")
    return tmp_path


def test_the_committed_runtime_is_complete():
    """onnxruntime-web's two files and the app's own module ship in the repository."""
    assert live.runtime_missing() == []
    assert (ROOT_STATIC / "ort" / "LICENSE").read_text().count("MIT License") == 1


def test_a_decoder_is_written_once_under_its_content_hash(tmp_path, tiny_model):
    static = _static(tmp_path)
    d = live.live_decoder(tiny_model, static)
    assert d.available and d.reason is None
    assert d.model_url.startswith("/app/static/models/decoder-") and d.model_url.endswith(".onnx")
    path = static / d.model_url.removeprefix("/app/static/")
    first = path.stat().st_mtime_ns
    assert live.live_decoder(tiny_model, static).model_url == d.model_url  # same weights, same file
    assert path.stat().st_mtime_ns == first
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    assert d.data() == {
        "model_url": d.model_url,
        "runtime_url": "/app/static/ort/ort.wasm.bundle.min.mjs",
        "module_url": "/app/static/live/decoder.mjs",
        "shape": [1, 28, 28],
        "dim": 2,
    }
    other = build_model(tiny_model.config, torch.Generator().manual_seed(9))
    assert live.live_decoder(other, static).model_url != d.model_url  # other weights, another file


def test_without_the_runtime_the_page_is_told_why(tmp_path, tiny_model):
    d = live.live_decoder(tiny_model, tmp_path)
    assert not d.available and d.model_url is None and "runtime is missing" in d.reason


def test_an_export_failure_is_a_reason_not_a_crash(tmp_path, monkeypatch):
    static = _static(tmp_path)
    model = build_model(ModelConfig(hidden=(8,), latent_dim=2))

    def broken(m):
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(live, "decoder_onnx", broken)
    d = live.live_decoder(model, static)
    assert not d.available and "cannot be exported" in d.reason and "unsupported operator" in d.reason


def test_live_decoding_can_be_turned_off(tmp_path, tiny_model, monkeypatch):
    static = _static(tmp_path)
    monkeypatch.setenv("VAE_LIVE_DECODE", "0")
    d = live.live_decoder(tiny_model, static)
    assert not d.available and "VAE_LIVE_DECODE=0" in d.reason and not (static / "models").exists()
    monkeypatch.setenv("VAE_LIVE_DECODE", "1")
    assert live.live_decoder(tiny_model, static).available


def test_a_new_process_finds_the_export_without_exporting_again(tmp_path, tiny_model, monkeypatch):
    import pytest

    static = _static(tmp_path / "static")
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    first = live.decoder_file(tiny_model, static)
    real = live.decoder_onnx
    monkeypatch.setattr(live, "decoder_onnx", lambda m: pytest.fail("exported again"))
    assert live.decoder_file(tiny_model, static) == first  # found by the decoder's weights: no export
    monkeypatch.setattr(live, "decoder_onnx", real)
    first.unlink()  # the file is gone: exported anew, never a dangling name
    assert live.decoder_file(tiny_model, static) == first and first.is_file()
    with torch.no_grad():
        next(tiny_model.decoder.parameters()).add_(1.0)
    assert live.decoder_file(tiny_model, static) != first  # other weights: another decoder, exported anew
