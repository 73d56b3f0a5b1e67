"""The exported decoder (what the browser runs) against torch: ONNX Runtime's Python package runs
the same graph as onnxruntime-web's WASM backend."""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from vae.checkpoint import load_checkpoint
from vae.config import ModelConfig
from vae.export import decoder_onnx
from vae.models import build_model

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = sorted((ROOT / "checkpoints").glob("*.safetensors"))


def _max_error(model, n: int = 9) -> float:
    session = onnxruntime.InferenceSession(decoder_onnx(model), providers=["CPUExecutionProvider"])
    z = torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(0)) * 2
    (x,) = session.run(None, {"z": z.numpy()})
    with torch.no_grad():
        expected = model.decode(z).numpy()
    assert x.shape == expected.shape == (n, *model.config.image_shape)
    return float(np.abs(x - expected).max())


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_committed_decoders_match_torch(path):
    assert _max_error(load_checkpoint(path).model) < 1e-4


@pytest.mark.parametrize("arch,hidden,shape", [("mlp", (16, 8), (1, 28, 28)), ("conv", (4, 8), (3, 32, 32))])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("kind", ["vae", "ae"])
def test_every_kind_of_decoder_matches_torch(arch, hidden, shape, likelihood, kind):
    cfg = ModelConfig(kind=kind, arch=arch, hidden=hidden, image_shape=shape, latent_dim=3, likelihood=likelihood)
    assert _max_error(build_model(cfg, torch.Generator().manual_seed(1))) < 1e-4


def test_the_graph_is_valid_with_a_dynamic_batch(tiny_model):
    graph = onnx.load_from_string(decoder_onnx(tiny_model))
    onnx.checker.check_model(graph)
    (z,) = graph.graph.input
    assert z.name == "z" and z.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert graph.graph.output[0].name == "x"
    for n in (1, 64):  # any batch size runs
        session = onnxruntime.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
        assert session.run(None, {"z": np.zeros((n, 2), np.float32)})[0].shape == (n, 1, 28, 28)
