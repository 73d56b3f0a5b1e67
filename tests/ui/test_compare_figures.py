"""ui.compare: the rate–distortion and KL-bar figures, the table and the labels (no Streamlit run)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from services.compare import Measured
from ui.compare import kl_bars_figure, model_label, rate_distortion_figure, spread_table, table


def test_rate_distortion_points_are_labelled_with_beta_and_an_ae_is_a_line():
    fig = rate_distortion_figure([("b4", 4.0, 3.0, 150.0), ("b05", 0.5, 14.0, 140.0)], [("ae", 134.5)])
    (points,) = [t for t in fig.data if t.mode == "markers+text"]
    assert list(points.text) == ["β = 4", "β = 0.5"]
    assert list(points.x) == [3.0, 14.0] and list(points.y) == [150.0, 140.0]
    assert [list(c) for c in points.customdata] == [["b4", -153.0], ["b05", -154.0]]  # ELBO = −(D + R)
    lines = [t for t in fig.data if t.mode == "lines"]
    for (_, _, r, d), line in zip([("b4", 4.0, 3.0, 150.0), ("b05", 0.5, 14.0, 140.0)], lines):
        assert line.x[0] + line.y[0] == pytest.approx(r + d)  # a line of equal ELBO through the point
        assert line.x[1] + line.y[1] == pytest.approx(r + d)
    assert [s.y0 for s in fig.layout.shapes] == [134.5]
    assert "ae (AE" in fig.layout.annotations[0].text
    lo, hi = fig.layout.yaxis.range
    assert lo < 134.5 and hi > 150.0  # nothing drawn off the chart


def test_kl_bars_are_sorted_values_on_a_log_axis_with_the_threshold():
    kl = np.array([2.0, 0.5, 1e-6])
    fig = kl_bars_figure([("m · β = 1", kl)], threshold=0.01)
    (bars,) = fig.data
    assert list(bars.x) == ["1", "2", "3"] and list(bars.customdata) == list(kl)
    assert bars.y[2] == pytest.approx(1e-4)  # drawn at the floor, hover shows the value
    assert fig.layout.yaxis.type == "log" and fig.layout.shapes[0].y0 == 0.01
    assert fig.layout.annotations[0].y == pytest.approx(-2)  # log10 of the threshold: a log axis places it so


def test_the_spread_table_has_a_row_a_vae():
    from services.bound import ModelSpread

    rows = spread_table([("v · β = 1", ModelSpread(10, 20, 5, -150.0, 3.25, -150.5, 1.5))])
    assert rows == [
        {
            "model": "v · β = 1",
            "MC estimate, L=10": "-150.00",
            "MC spread (sd)": "3.25",
            "closed-form-KL estimate": "-150.50",
            "closed-form spread (sd)": "1.50",
        }
    ]


def test_the_table_and_labels_say_what_an_ae_lacks():
    vae = Measured("v", "vae", 0.5, 140.0, 14.0, -154.0, -152.0, 100, 8, torch.tensor([9.0, 5.0]), 2, 2, 8)
    ae = Measured("a", "ae", 1.0, 134.0, None, None, None, 0, 0, torch.zeros(0), None, 2, 8)
    rows = table([vae, ae], iwae_k=100)
    assert rows[0] == {
        "model": "v",
        "β": "0.5",
        "rate KL": "14.00",
        "distortion −log p(x|z)": "140.00",
        "ELBO": "-154.00",
        "IWAE (k=100)": "-152.00",
        "gap IWAE − ELBO": "2.00",
        "active units": "2 / 2",
    }
    assert rows[1]["β"] == "— (AE)" and rows[1]["ELBO"] == rows[1]["IWAE (k=100)"] == rows[1]["rate KL"] == "—"
    assert rows[1]["gap IWAE − ELBO"] == "—"
    assert model_label("v", "vae", 0.5) == "v · β = 0.5" and model_label("a", "ae", 1.0) == "a · AE"
