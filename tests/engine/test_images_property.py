"""Property and hostile-input tests of the upload preprocessing: any bytes in, either a valid model
input out or one typed ImageError; oversized canvases are refused before they are decoded."""

import io
import struct
import tracemalloc
import zlib

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from vae.images import ImageError, preprocess

SHAPES = [(1, 28, 28), (3, 32, 32)]


def _png(size=(8, 8), mode="L") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 128).save(buf, format="PNG")
    return buf.getvalue()


# What a refusal may say: each ImageError message starts with one of these (vae.images).
REASONS = ("the file is empty", "not an image this app can read", "the image is damaged or truncated", "the image ")


def _check(data: bytes, shape) -> None:
    try:
        out = preprocess(data, shape, style="digit" if shape[0] == 1 else "plain")
    except ImageError as e:
        msg = str(e)
        # One line in the app's words: a known reason, no traceback, not a bare exception chain.
        assert msg.startswith(REASONS) and "\n" not in msg and "Traceback" not in msg, msg
        assert e.__cause__ is None and (e.__context__ is None or e.__suppress_context__), "a decoder error leaks"
        return
    x = out.tensor
    assert tuple(x.shape) == shape and x.dtype == torch.float32
    assert torch.isfinite(x).all() and x.min() >= 0 and x.max() <= 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=2048), shape=st.sampled_from(SHAPES))
def test_any_bytes_give_a_valid_tensor_or_an_image_error(data, shape):
    _check(data, shape)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cut=st.integers(min_value=0, max_value=400),
    flips=st.lists(st.tuples(st.integers(0, 399), st.integers(1, 255)), max_size=4),
    shape=st.sampled_from(SHAPES),
)
def test_damaged_real_images_give_a_valid_tensor_or_an_image_error(cut, flips, shape):
    """Real PNG/JPEG/GIF bytes, truncated and with flipped bytes: the decoder's own failure modes."""
    for fmt in ("PNG", "JPEG", "GIF"):
        buf = io.BytesIO()
        Image.effect_noise((20, 20), 60).convert("L").save(buf, format=fmt)
        data = bytearray(buf.getvalue()[: max(cut, 1)])
        for pos, xor in flips:
            if pos < len(data):
                data[pos] ^= xor
        _check(bytes(data), shape)


def _png_with_canvas(width: int, height: int) -> bytes:
    """A valid small PNG whose header claims a huge canvas (a decompression bomb's shape)."""
    data = bytearray(_png((1, 1)))
    ihdr = 8 + 8  # signature, then the IHDR chunk's length and type
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


def test_a_30000x30000_canvas_is_refused_before_decoding_without_a_memory_spike():
    bomb = _png_with_canvas(30_000, 30_000)
    assert len(bomb) < 200
    tracemalloc.start()
    try:
        with pytest.raises(ImageError, match="pixels"):
            preprocess(bomb, (1, 28, 28))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20  # decoding it would take 900 MB


def test_a_canvas_just_over_the_limit_names_its_size():
    with pytest.raises(ImageError, match="8000x6000"):
        preprocess(_png_with_canvas(8000, 6000), (1, 28, 28))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, this is text renamed to .png",
        b"<html><body>not an image</body></html>",
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
        b"PK\x03\x04" + b"\0" * 40,  # a ZIP
    ],
)
def test_non_images_are_refused_with_one_message(data):
    with pytest.raises(ImageError):
        preprocess(data, (1, 28, 28))
