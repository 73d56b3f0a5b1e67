"""vae.fast_decode: the inference layout of a conv decoder computes decode_logits' function."""

import pytest
import torch
from torch import nn

from vae.config import ModelConfig
from vae.fast_decode import conv_transpose_scatter, fast_decoder
from vae.models import build_model


@pytest.mark.parametrize(("c", "o", "s", "bias"), [(8, 1, 7, True), (5, 3, 14, True), (4, 2, 3, False)])
def test_scatter_equals_conv_transpose(c, o, s, bias):
    g = torch.Generator().manual_seed(0)
    conv = nn.ConvTranspose2d(c, o, 4, 2, 1, bias=bias)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
        if bias:
            conv.bias.copy_(torch.randn(o, generator=g))
        h = torch.randn(6, c, s, s, generator=g)
        want = conv(h)
        got = conv_transpose_scatter(h, conv)
        got_cl = conv_transpose_scatter(h.contiguous(memory_format=torch.channels_last), conv)
    assert got.shape == want.shape == (6, o, 2 * s, 2 * s)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_cl, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("side", "hidden"), [(28, (4, 8)), (32, (3, 5, 6))])
def test_fast_decoder_equals_decode_logits(side, hidden):
    cfg = ModelConfig(arch="conv", image_shape=(1, side, side), hidden=hidden, latent_dim=3)
    model = build_model(cfg, torch.Generator().manual_seed(1)).eval()
    decode = fast_decoder(model)
    assert decode != model.decode_logits  # the fast path is taken
    z = torch.randn(9, 3, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        got, want = decode(z), model.decode_logits(z)
    assert got.shape == want.shape == (9, 1, side, side) and got.is_contiguous()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_other_decoders_keep_decode_logits():
    mlp = build_model(ModelConfig(image_shape=(1, 8, 8), hidden=(8,), latent_dim=2), torch.Generator().manual_seed(0))
    assert fast_decoder(mlp) == mlp.decode_logits
    rgb = build_model(  # 3 output channels still scatter; 8 would not
        ModelConfig(arch="conv", image_shape=(3, 28, 28), hidden=(4, 8), latent_dim=2), torch.Generator().manual_seed(0)
    )
    assert fast_decoder(rgb) != rgb.decode_logits
    conv = build_model(
        ModelConfig(arch="conv", image_shape=(1, 28, 28), hidden=(4, 8), latent_dim=2), torch.Generator().manual_seed(0)
    )
    conv.decoder.net[-1] = nn.ConvTranspose2d(4, 1, 4, 2, 1, output_padding=1)  # not the layer it rewrites
    assert fast_decoder(conv) == conv.decode_logits
