"""Inference-only decoding for the importance-weighted bound, where a conv decoder runs tens of
millions of times: the same function as ``model.decode_logits``, laid out for the CPU.

Two changes, both exact up to float32 summation order (tests compare with ``decode_logits``):

- the transposed convolutions run on channels-last activations (oneDNN's faster layout here);
- the last transposed convolution (4x4 kernel, stride 2, padding 1, a few output channels: the
  picture) is one matmul and a col2im of 16 shifted slices. oneDNN spends as long on that layer
  (0.2 MFLOP a code for MNIST's 32 -> 1 channels) as on the 16x larger one before it.

The weights are read from the model at each call (nothing is copied, so training in between is
seen). Not for autograd or ONNX export: ``model.decode_logits`` stays the definition.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .models import VAE, Decoder

# out[2I + a] receives in[i] * W[k] with 2i - 1 + k = 2I + a (stride 2, padding 1, kernel 4):
# phase a = 0 from (i = I, k = 1) and (i = I - 1, k = 3); a = 1 from (i = I, k = 2) and (i = I + 1, k = 0).
_TAPS = {0: ((0, 1), (-1, 3)), 1: ((0, 2), (1, 0))}
_SCATTER_MAX_OUT = 4  # 32 -> O channels, 64 codes of 14x14: O = 1, 3, 4, 8 take 0.8, 1.0, 1.2, 1.9 ms; oneDNN 1.4


def _scatterable(m: nn.Module) -> bool:
    return (
        isinstance(m, nn.ConvTranspose2d)
        and m.kernel_size == (4, 4)
        and m.stride == (2, 2)
        and m.padding == (1, 1)
        and m.output_padding == (0, 0)
        and m.dilation == (1, 1)
        and m.groups == 1
        and m.out_channels <= _SCATTER_MAX_OUT
    )


def conv_transpose_scatter(h: Tensor, conv: nn.ConvTranspose2d) -> Tensor:
    """``conv(h)`` for a 4x4, stride-2, padding-1 transposed convolution: (R, C, S, S) -> (R, O, 2S, 2S).

    Y = h (R*S*S, C) @ W (C, 4*4*O) gives every input pixel's 4x4 contribution; each output phase
    (a, b) is the sum of 4 shifted slices of Y (col2im). Reads h in channels-last order (free when
    it is stored so)."""
    r, c, s, _ = h.shape
    o = conv.out_channels
    w = conv.weight.permute(0, 2, 3, 1).reshape(c, 16 * o)  # (C, ky, kx, O)
    y = (h.permute(0, 2, 3, 1).reshape(r * s * s, c) @ w).view(r, s, s, 4, 4, o)
    yp = F.pad(y, (0, 0, 0, 0, 0, 0, 1, 1, 1, 1))  # (R, S+2, S+2, 4, 4, O): row/column -1 and S are zero
    out = torch.empty(r, s, 2, s, 2, o, dtype=h.dtype, device=h.device)
    for a, rows in _TAPS.items():
        for b, cols in _TAPS.items():
            parts = [yp[:, 1 + di : 1 + di + s, 1 + dj : 1 + dj + s, ky, kx] for di, ky in rows for dj, kx in cols]
            torch.add(parts[0], parts[1], out=out[:, :, a, :, b])
            out[:, :, a, :, b] += parts[2]
            out[:, :, a, :, b] += parts[3]
    if conv.bias is not None:
        out += conv.bias
    return out.view(r, 2 * s, 2 * s, o).permute(0, 3, 1, 2)  # (R, O, 2S, 2S), channels-last storage


def fast_decoder(model: VAE) -> Callable[[Tensor], Tensor]:
    """A function z (N, D) -> logits (N, C, H, W) equal to ``model.decode_logits`` (to float32
    rounding), faster for conv decoders on the CPU; ``model.decode_logits`` itself otherwise."""
    layers = list(getattr(model.decoder, "net", []))
    standard = type(model).decode_logits is VAE.decode_logits and type(model.decoder).forward is Decoder.forward
    if not standard or model.config.arch != "conv" or model.device.type != "cpu" or not layers:
        return model.decode_logits
    if not _scatterable(layers[-1]):
        return model.decode_logits

    def decode(z: Tensor) -> Tensor:
        h = z
        for m in layers[:-1]:
            if isinstance(m, nn.ConvTranspose2d):
                h = m(h.contiguous(memory_format=torch.channels_last))
            else:
                h = m(h)
        return conv_transpose_scatter(h.contiguous(memory_format=torch.channels_last), layers[-1]).contiguous()

    return decode
