"""ui.figures: the latent map's figure and its click, the interpolation chart, the score histogram."""

from __future__ import annotations

import json

import numpy as np
import pytest
from vae_helpers import figure_points, figure_xy

from services.map_geometry import ellipse_outline, ticks
from services.map_overlays import extent
from ui import figures


def blobs(n: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 2)).astype(np.float32), rng.integers(0, 4, n)


@pytest.mark.parametrize("n", [1, 10, 11, 26, 27, 40])
def test_palette_gives_n_distinct_colours(n):
    colours = figures.palette(n)
    assert len(colours) == n and len(set(colours)) == n
    assert figures.palette(0) == []


def stars(names: list[str], xy: np.ndarray) -> dict:
    return {"id": "uploads", "kind": "stars", "x": xy[:, 0].tolist(), "y": xy[:, 1].tolist(), "text": names,
            "short": [str(u + 1) for u in range(len(names))]}  # fmt: skip


def test_map_figure_traces_and_points():
    xy, labels = blobs(100)
    up = np.zeros((2, 2), dtype=np.float32)
    layers = figures.styled([stars(["u1", "u2"], up)])
    fig = figures.map_figure(xy, labels, ["a", "b", "c", "d"], layers)
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
    # Two uploads at one place: their names go to two spots (above, below), not on each other.
    assert sorted((a.text, a.yshift > 0) for a in fig.layout.annotations) == [("u1", True), ("u2", False)]


def test_map_figure_places_crowded_upload_names_apart_or_leaves_them_out():
    xy, labels = blobs(50)
    names = [f"a-long-upload-name-{u}.png" for u in range(6)]
    layers = figures.styled([stars(names, np.zeros((6, 2)) + np.arange(6)[:, None] * 0.01)])
    assert layers[0]["title"] == names and len(set(layers[0]["text"])) == 6  # cut in the middle: still apart
    assert all(len(t) <= figures.LABEL_CHARS for t in layers[0]["text"]) and layers[0]["text"][2] == "a-long-u…e-2.png"
    fig = figures.map_figure(xy, labels, list("abcd"), layers)
    boxes = []
    for a in fig.layout.annotations:  # in pixels, as the figure places them: no two overlap
        w, h = len(a.text) * 0.6 * 12, 14
        boxes.append((a.xshift - w / 2, -a.yshift - h / 2, a.xshift + w / 2, -a.yshift + h / 2))
    assert 1 <= len(boxes) < 6  # where no spot is free (the cluster covers them), a name is left out
    for i, p in enumerate(boxes):
        for q in boxes[i + 1 :]:
            assert not (p[0] < q[2] and q[0] < p[2] and p[1] < q[3] and q[1] < p[3]), (p, q)


def test_map_figure_square_axis_titles_and_home_view():
    xy, labels = blobs(20)
    square = figures.styled([{"id": "square", "kind": "rect", "x": [-1.5, 1.5], "y": [-1.5, 1.5]}])
    fig = figures.map_figure(xy, labels, list("abcd"), square, axis_titles=("z1", "z2"))
    (rect,) = fig.layout.shapes
    assert (rect.x0, rect.y1) == (-1.5, 1.5) and rect.line.dash == "6px,4px"
    assert fig.layout.xaxis.title.text == "z1" and fig.layout.yaxis.title.text == "z2"
    home = extent(xy[:, 0].tolist(), xy[:, 1].tolist(), square)  # the live view's home view and ticks
    assert tuple(fig.layout.xaxis.range) == pytest.approx(home[:2]) and fig.layout.xaxis.dtick == ticks(*home[:2])[1]
    assert not figures.map_figure(xy, labels, list("abcd")).layout.shapes


def test_map_figure_draws_the_ellipse_layers_as_the_live_view_does():
    xy, labels = blobs(10)
    axes = [[0.5, 0.2, 0.3]] * 10
    layers = figures.styled(
        [
            {"id": "clouds", "kind": "ellipses", "k": 1, "at": list(range(10)), "axes": axes},
            {"id": "pick2", "kind": "ellipses", "k": 2, "at": [3], "axes": axes[:1]},
            {"id": "neighbours", "kind": "rings", "of": 3, "at": [1, 2]},
        ]
    )
    data = json.loads(figures.map_figure(xy, labels, list("abcd"), layers).to_json())["data"]
    clouds = [t for t in data if t.get("name") == "±1σ of every point"]
    assert sum(v is None for t in clouds for v in t["x"]) == 10  # one closed outline a point, by label colour
    assert len(clouds) == len(set(labels)) and sum(t["showlegend"] for t in clouds) == 1
    (pick,) = [t for t in data if t.get("name") == "±2σ of #3"]
    line = np.stack([pick["x"][:-1], pick["y"][:-1]], 1).astype(float)
    np.testing.assert_allclose(line, ellipse_outline(xy[3], axes[0], 2, 33), atol=1e-6)  # the JS draws these points
    assert pick["line"]["dash"] == "6px,4px"
    (rings,) = [t for t in data if t.get("name") == "nearest in z to #3"]
    assert rings["marker"]["symbol"] == "circle-open"


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
