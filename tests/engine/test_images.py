import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from vae.images import ImageError, digits_frame, open_image, preprocess, to_pil


def _png(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def _dark_digit_on_light_paper() -> Image.Image:
    """A thick dark '7' drawn off-centre (upper left) on light grey paper, as a phone photo would be."""
    img = Image.new("L", (120, 90), 235)
    d = ImageDraw.Draw(img)
    d.line([(10, 10), (45, 10), (25, 60)], fill=20, width=7)
    return img


def _centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(a.shape)
    return float((ys * a).sum() / a.sum()), float((xs * a).sum() / a.sum())


def test_digit_style_inverts_and_centres():
    out = preprocess(_png(_dark_digit_on_light_paper()), (1, 28, 28), style="digit", dark_background=True)
    x = out.tensor
    assert out.inverted
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    assert x.min() >= 0 and x.max() <= 1
    a = x[0].numpy()
    # Inverted: the background is dark, the stroke bright.
    assert a[0].max() < 0.05 and a[-1].max() < 0.05 and a[:, 0].max() < 0.05 and a[:, -1].max() < 0.05
    assert a.max() > 0.8
    cy, cx = _centre_of_mass(a)
    assert abs(cy - 13.5) < 1.5 and abs(cx - 13.5) < 1.5
    # MNIST's convention: the content fits a 20x20 box.
    rows, cols = np.nonzero(a > 0.1)
    assert rows.max() - rows.min() <= 21 and cols.max() - cols.min() <= 21
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) >= 17
    names = [name for name, _ in out.steps]
    assert names[0] == "original" and any("inverted" in n for n in names)


def test_dark_background_image_is_not_inverted():
    img = Image.new("L", (40, 40), 0)
    ImageDraw.Draw(img).ellipse([5, 5, 20, 20], fill=255)
    out = preprocess(img, (1, 28, 28), style="digit", dark_background=True)
    assert not out.inverted
    assert out.tensor[0, 0, 0] < 0.05 and out.tensor.max() > 0.8


def test_light_data_sets_are_not_inverted():
    out = preprocess(_dark_digit_on_light_paper(), (1, 16, 16), style="plain", dark_background=False)
    assert not out.inverted
    assert out.tensor[0, 0, -1] > 0.8  # paper stays light


def test_rgba_transparency_is_flattened_onto_white():
    # Transparent black everywhere (what many editors write), an opaque black square in the middle.
    img = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    ImageDraw.Draw(img).rectangle([8, 8, 23, 23], fill=(0, 0, 0, 255))
    x = preprocess(_png(img), (1, 8, 8), style="plain", dark_background=False).tensor
    assert x.shape == (1, 8, 8)
    assert x[0, 0, 0] > 0.95  # the transparent border became white, not black
    assert x[0, 4, 4] < 0.05
    # With a dark-background data set it is then inverted: white square on black.
    y = preprocess(_png(img), (1, 8, 8), style="plain", dark_background=True)
    assert y.inverted and y.tensor[0, 0, 0] < 0.05 and y.tensor[0, 4, 4] > 0.95


def _white_ring_on_transparency(size: int = 96) -> Image.Image:
    """A white ring (anti-aliased edges: partly transparent) on a fully transparent canvas."""
    img = Image.new("RGBA", (size, size), (255, 255, 255, 0))
    ImageDraw.Draw(img).ellipse([12, 12, size - 12, size - 12], outline=(255, 255, 255, 255), width=8)
    return img.resize((size // 2, size // 2), Image.LANCZOS)  # soft, partly transparent edges


def _ring_mask(a: np.ndarray) -> tuple[float, float, float]:
    """Mean level of the ring's band, of its centre and of the corners of a (H, W) image."""
    h, w = a.shape
    ys, xs = np.indices(a.shape)
    r = np.hypot(ys - (h - 1) / 2, xs - (w - 1) / 2) / (h / 2)
    return float(a[(r > 0.6) & (r < 0.9)].mean()), float(a[r < 0.3].mean()), float(a[r > 1.2].mean())


@pytest.mark.parametrize("style", ["digit", "plain"])
def test_white_ring_on_transparency_stays_a_ring(style):
    """Light content on transparency is flattened onto black: on white the ring would vanish."""
    out = preprocess(_png(_white_ring_on_transparency()), (1, 28, 28), style=style, dark_background=True)
    assert not out.inverted  # already light on dark, like the data set's images
    band, centre, _ = _ring_mask(out.tensor[0].numpy())
    assert band > 0.2 and centre < 0.05, (band, centre)
    assert any(label.startswith("alpha flattened onto black") for label, _ in out.steps)


def test_white_ring_for_a_light_background_data_set_keeps_its_contrast():
    """With a light-background data set nothing is inverted, and the ring stays visible on black."""
    x = preprocess(_white_ring_on_transparency(), (1, 28, 28), style="plain", dark_background=False).tensor
    band, centre, corners = _ring_mask(x[0].numpy())
    assert band > 0.3 and centre < 0.05 and corners < 0.05


def test_dark_ring_on_transparency_is_flattened_onto_white():
    ring = _white_ring_on_transparency()
    r, g, b, a = ring.split()
    dark = Image.merge("RGBA", (r.point(lambda v: 0), g.point(lambda v: 0), b.point(lambda v: 0), a))
    out = preprocess(_png(dark), (1, 28, 28), style="plain", dark_background=True)
    assert out.inverted  # flattened onto white, then inverted like any light-background upload
    band, centre, _ = _ring_mask(out.tensor[0].numpy())
    assert band > 0.3 and centre < 0.05


@pytest.mark.parametrize(
    "rgba, expected",
    [
        ((255, 255, 255, 0), "white"),  # nothing visible: the usual white
        ((250, 250, 250, 255), "black"),
        ((255, 255, 0, 255), "black"),  # yellow is light (grey level 0.89)
        ((0, 0, 255, 255), "white"),  # blue is dark (0.11)
        ((20, 20, 20, 30), "white"),
    ],
)
def test_flatten_background_contrasts_with_the_visible_pixels(rgba, expected):
    from vae.images import flatten_background

    assert flatten_background(Image.new("RGBA", (4, 4), rgba)) == expected


def test_palette_transparency_is_flattened():
    img = Image.new("P", (16, 16), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0, 0, 0] * 254)
    ImageDraw.Draw(img).rectangle([4, 4, 11, 11], fill=1)
    img.info["transparency"] = 0
    x = preprocess(_png(img), (3, 16, 16), style="plain", dark_background=False).tensor
    assert x.shape == (3, 16, 16)
    torch.testing.assert_close(x[:, 0, 0], torch.ones(3))  # transparent -> white
    torch.testing.assert_close(x[:, 8, 8], torch.tensor([1.0, 0.0, 0.0]))  # opaque red stays red


@pytest.mark.parametrize("style", ["digit", "digit-8x8", "centered", "plain"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 64, 64), (1, 20, 12)])
def test_output_shape_and_range(style, shape):
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (50, 70, 3), dtype=np.uint8), "RGB")
    x = preprocess(_png(img, "JPEG"), shape, style=style).tensor
    assert x.shape == shape and x.dtype == torch.float32
    assert x.min() >= 0 and x.max() <= 1


def test_16_bit_greyscale():
    arr = np.linspace(0, 65535, 20 * 20).reshape(20, 20).astype(np.uint16)
    x = preprocess(Image.fromarray(arr), (1, 10, 10), dark_background=False).tensor
    assert x.min() >= 0 and x.max() <= 1 and x[0, -1, -1] > x[0, 0, 0]


def test_paths_are_accepted(tmp_path):
    p = tmp_path / "digit.png"
    _dark_digit_on_light_paper().save(p)
    a = preprocess(p, (1, 28, 28), style="digit").tensor
    b = preprocess(str(p), (1, 28, 28), style="digit").tensor
    c = preprocess(p.read_bytes(), (1, 28, 28), style="digit").tensor
    assert torch.equal(a, b) and torch.equal(a, c)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, this is a text file renamed to .png\n" * 3,
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 20,  # a PNG signature and nothing valid after it
    ],
    ids=["empty", "text", "bad-png"],
)
def test_bad_bytes_raise_image_error(data, tmp_path):
    with pytest.raises(ImageError):
        preprocess(data, (1, 28, 28))
    p = tmp_path / "upload.png"
    p.write_bytes(data)
    with pytest.raises(ImageError):
        preprocess(p, (1, 28, 28))


def test_truncated_png_raises_image_error():
    rng = np.random.default_rng(1)
    data = _png(Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8), "L"))
    with pytest.raises(ImageError):
        preprocess(data[: len(data) // 2], (1, 28, 28))


def test_missing_file_raises_image_error(tmp_path):
    with pytest.raises(ImageError, match="nope.png"):
        open_image(tmp_path / "nope.png")


def test_oversized_canvas_is_refused_before_decoding(monkeypatch):
    import vae.images

    monkeypatch.setattr(vae.images, "MAX_PIXELS", 100)
    with pytest.raises(ImageError, match="pixels"):
        open_image(_png(Image.new("L", (20, 20))))


def test_bad_style_raises_value_error():
    with pytest.raises(ValueError):
        preprocess(Image.new("L", (8, 8)), (1, 8, 8), style="fancy")


def test_to_pil():
    x = torch.zeros(1, 4, 6)
    x[0, 1, 2] = 1.0
    img = to_pil(x, scale=3)
    assert img.size == (18, 12) and img.mode == "L"
    assert img.getpixel((2 * 3, 1 * 3)) == 255 and img.getpixel((0, 0)) == 0
    assert to_pil(torch.rand(3, 5, 5)).mode == "RGB"


@pytest.mark.parametrize("nrow,padding,pad_value", [(4, 2, 0.3), (10, 0, 0.0), (3, 1, 0.5), (20, 2, 1.0)])
def test_tile_matches_torchvision_make_grid(nrow, padding, pad_value):
    from torchvision.utils import make_grid

    from vae.images import tile

    x = torch.rand(10, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(tile(x, nrow, padding, pad_value), make_grid(x, nrow=nrow, padding=padding, pad_value=pad_value))
    grey = x[:, :1]
    assert tile(grey, nrow, padding, pad_value).shape[0] == 1  # grey stays grey
    assert torch.equal(
        tile(grey, nrow, padding, pad_value)[0], make_grid(grey, nrow=nrow, padding=padding, pad_value=pad_value)[0]
    )


def test_limit_total_keeps_files_in_order_up_to_the_total():
    from vae.images import limit_total

    files = [("a", b"x" * 40), ("b", b"x" * 50), ("c", b"x" * 20), ("d", b"x" * 10)]
    kept, refused = limit_total(files, max_total=100)
    assert [n for n, _ in kept] == ["a", "b", "d"]  # c would pass 100; d still fits
    assert [n for n, _ in refused] == ["c"] and "in all" in refused[0][1]


def test_digit_8x8_style_makes_an_upload_one_of_the_digits():
    """A dark stroke on paper, of any size and place, becomes a light 8x8 digit whose height fills the frame,
    shown as the digits data set shows its images (digits_frame)."""
    img = Image.new("L", (120, 90), 255)
    ImageDraw.Draw(img).rectangle((50, 20, 62, 69), fill=0)  # a tall bar: 50 rows, 13 columns
    out = preprocess(_png(img), (1, 28, 28), style="digit-8x8", dark_background=True)
    x8 = np.asarray(dict(out.steps)["fitted to 8x8 (the digits' frame)"], dtype=np.float32) / 255
    assert x8.shape == (8, 8) and (x8.max(1) > 0.5).all()  # every row inked: the height fills the frame
    assert (x8[:, :3] == 0).all() and (x8[:, -3:] == 0).all() and x8.max() == 1.0  # centred, 2 columns wide
    torch.testing.assert_close(out.tensor, digits_frame(torch.from_numpy(x8)[None, None], 28)[0], atol=0.01, rtol=0)


def test_digits_8x8_round_trip():
    """One of the 8x8 digits, upscaled and saved as a PNG, comes back close to itself."""
    x8 = torch.zeros(1, 1, 8, 8)
    x8[0, 0, :, 2] = x8[0, 0, :, 5] = 1.0
    x8[0, 0, 0, 2:6] = x8[0, 0, 7, 2:6] = 1.0  # a boxy zero that fills the 8 rows
    shown = digits_frame(x8, 28)[0]
    back = preprocess(_png(to_pil(shown)), (1, 28, 28), style="digit-8x8", dark_background=True).tensor
    assert (back - shown).abs().mean() < 0.05
