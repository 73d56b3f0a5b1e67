"""ui.pictures: the error heat map, its colour bar, thumbnails and a canvas drawing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ui.pictures import colorbar_image, colormap, drawing, heatmap_image, labelled_rows, thumbnail


def test_colormap_and_heatmap():
    rgb = colormap(np.array([[0.0, 0.5, 1.0, 7.0]]))
    assert rgb.shape == (1, 4, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == (0, 0, 4) and tuple(rgb[0, 2]) == (252, 255, 164) == tuple(rgb[0, 3])
    assert rgb[0, 1].sum() > rgb[0, 0].sum()
    img = heatmap_image(torch.rand(28, 28), scale=4)
    assert img.size == (112, 112) and img.mode == "RGB"
    assert heatmap_image(np.zeros((5, 7)), scale=1).size == (7, 5)
    assert colorbar_image(100, 8).size == (100, 8)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "1", "I;16", "F", "CMYK", "LA"])
def test_thumbnail_sizes(mode):
    small = thumbnail(Image.new(mode, (28, 28)), 112)
    assert small.size == (112, 112) and small.mode in ("L", "RGB", "RGBA")
    assert thumbnail(Image.new(mode, (1000, 500)), 112, square=False).size == (112, 56)
    padded = thumbnail(Image.new(mode, (1000, 500)), 112)
    assert padded.size == (112, 112) and padded.mode == "RGBA" and padded.getpixel((0, 0))[3] == 0
    assert thumbnail(Image.new(mode, (30, 30)), 112, square=False).size == (90, 90)  # x3, sharp pixels
    assert thumbnail(Image.new(mode, (96, 48)), 112, square=False).size == (112, 56)


def test_drawing_flattens_strokes_onto_the_background():
    rgba = np.zeros((20, 30, 4), dtype=np.uint8)  # transparent everywhere: nothing drawn
    assert drawing(rgba, "#000000") is None
    assert drawing(None, "#000000") is None and drawing(np.zeros((20, 30, 3), np.uint8), "#000000") is None
    rgba[5:10, 5:10] = 255  # an opaque white stroke
    img = drawing(rgba, "#000000")
    assert img.mode == "RGB" and img.size == (30, 20)
    assert img.getpixel((7, 7)) == (255, 255, 255) and img.getpixel((0, 0)) == (0, 0, 0)


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_labelled_rows_write_each_label_left_of_its_row(mode):
    grid = Image.new(mode, (90, 60), 128 if mode == "L" else (128, 128, 128))
    out = labelled_rows(grid, ["z1", "z13", "z3"], margin=40)
    assert out.size == (130, 60) and out.mode == mode
    assert out.crop((40, 0, 130, 60)).tobytes() == grid.tobytes()  # the grid itself untouched
    margin = np.asarray(out.convert("L").crop((0, 0, 40, 60)))
    for r in range(3):  # some ink in each row's band of the margin
        assert margin[r * 20 : (r + 1) * 20].max() > 128
