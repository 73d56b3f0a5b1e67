"""The decoder as an ONNX graph, for running it outside PyTorch (the app's in-browser decoder,
or any ONNX runtime): z (N, D) float32 -> the decoder's mean x (N, C, H, W) in [0, 1]."""

from __future__ import annotations

import io
import warnings

import torch
from torch import Tensor, nn

from .models import VAE

OPSET = 17  # onnxruntime-web 1.30 runs it; the legacy exporter needs only the `onnx` package
INPUT, OUTPUT = "z", "x"


class DecoderMean(nn.Module):
    """``model.decode`` as a module: z (N, D) -> sigmoid(decoder(z)) (N, C, H, W)."""

    def __init__(self, model: VAE) -> None:
        super().__init__()
        self.decoder = model.decoder

    def forward(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.decoder(z))


def decoder_onnx(model: VAE) -> bytes:
    """The model's decoder mean as ONNX bytes, with a dynamic batch axis (input "z", output "x")."""
    module = DecoderMean(model).cpu().eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter announces its own deprecation
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.zeros(1, model.latent_dim),),
            buf,
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
        )
    return buf.getvalue()
