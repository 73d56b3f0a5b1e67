"""ui.figures: the latent map's figure and its click, the interpolation chart, the score histogram."""

from __future__ import annotations

import json

import numpy as np
import pytest
from vae_helpers import figure_points, figure_xy

from ui import figures


def blobs(n: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 2)).astype(np.float32), rng.integers(0, 4, n)


@pytest.mark.parametrize("n", [1, 10, 11, 26, 27, 40])
def test_palette_gives_n_distinct_colours(n):
    colours = figures.palette(n)
    assert len(colours) == n and len(set(colours)) == n
    assert figures.palette(0) == []


def test_map_figure_traces_and_points():
    xy, labels = blobs(100)
    up = np.zeros((2, 2), dtype=np.float32)
    fig = figures.map_figure(xy, labels, ["a", "b", "c", "d"], upload_xy=up, upload_names=["u1", "u2"])
    spec = fig.to_json()
    counts = figure_points(spec)
    assert counts.pop("your uploads") == 2
    assert counts == {name: int((labels == j).sum()) for j, name in enumerate("abcd")}
    # Each label trace carries the images' indices as customdata; uploads carry negative numbers.
    data = json.loads(spec)["data"]
    assert [t["type"] for t in data] == ["scattergl"] * 5
    assert data[-1]["marker"]["symbol"] == "star"
    xy_back = figure_xy(spec)
    assert xy_back.shape == (102, 2)
    order = np.concatenate([np.flatnonzero(labels == j) for j in range(4)])
    np.testing.assert_allclose(xy_back[:100], xy[order], atol=1e-6)  # label by label


def test_map_figure_square_and_axis_titles():
    xy, labels = blobs(20)
    fig = figures.map_figure(xy, labels, list("abcd"), axis_titles=figures.AXIS_TITLES["raw"], square=(-1.5, 1.5))
    (rect,) = fig.layout.shapes
    assert (rect.x0, rect.y1) == (-1.5, 1.5) and rect.line.dash == "dash"
    assert fig.layout.xaxis.title.text == "z₁" and fig.layout.yaxis.title.text == "z₂"
    assert not figures.map_figure(xy, labels, list("abcd")).layout.shapes


def test_selected_index_reads_customdata():
    assert figures.selected_index([]) is None
    assert figures.selected_index(None) is None
    assert figures.selected_index([{"curve_number": 0, "point_index": 3, "customdata": 17}]) == 17
    assert figures.selected_index([{"customdata": [5]}]) == 5
    assert figures.selected_index([{"customdata": 4}, {"customdata": 9.0}]) == 9  # the last click
    assert figures.selected_index([{"customdata": 4}, {"customdata": -1}]) == 4  # an upload's star is skipped
    assert figures.selected_index([{"customdata": -1}]) is None
    assert figures.selected_index([{"point_index": 2}]) is None


def test_distance_figure_one_line_per_path():
    fig = figures.distance_figure([("VAE", np.arange(5.0)), ("AE", np.ones(5))], "pixel distance")
    assert [t.name for t in fig.data] == ["VAE", "AE"]
    assert list(fig.data[0].x) == [0, 1, 2, 3, 4] and list(fig.data[1].y) == [1.0] * 5
    assert fig.layout.yaxis.title.text == "pixel distance" and fig.layout.xaxis.title.text == "step"


def test_score_histogram_marks_each_image():
    ref = np.random.default_rng(0).normal(-100, 5, 300)
    fig = figures.score_histogram(ref, [("a.png", -95.0), ("a-very-long-file-name-indeed.png", -120.0)])
    assert len(fig.data) == 1 and fig.data[0].type == "histogram" and len(fig.data[0].x) == 300
    assert [s.x0 for s in fig.layout.shapes] == [-95.0, -120.0]
    assert [a.text for a in fig.layout.annotations] == ["a.png", "a-very-long-file-name-in"]  # 24 characters
    assert "300 test images' ELBO" in fig.layout.title.text


def test_score_histogram_draws_the_verdicts_limit():
    ref = np.random.default_rng(0).normal(-300, 40, 200)
    fig = figures.score_histogram(ref, [("blank.png", 60.0)], "S(x)", x_title="S(x), bits", limit=("99th pct", -200.0))
    assert [s.x0 for s in fig.layout.shapes] == [60.0, -200.0]
    assert fig.layout.shapes[1].line.dash == "dash"
    assert [a.text for a in fig.layout.annotations] == ["blank.png", "99th pct"]
    assert fig.layout.xaxis.title.text == "S(x), bits"
