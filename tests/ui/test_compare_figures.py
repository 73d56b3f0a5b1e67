"""ui.compare: the rate–distortion and KL-bar figures, the table and the labels (no Streamlit run)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from services.compare import Measured
from ui.compare import kl_bars_figure, model_label, rate_distortion_figure, spread_table, table


def test_rate_distortion_points_are_named_by_model_and_beta_and_an_ae_is_a_line():
    fig = rate_distortion_figure([("b4", 4.0, 3.0, 150.0), ("b05", 0.5, 14.0, 140.0)], [("ae", 134.5)])
    points = [t for t in fig.data if t.mode == "markers+text"]
    assert [list(p.text) for p in points] == [["b4 · β = 4"], ["b05 · β = 0.5"]]
    assert [p.name for p in points] == ["b4 · β = 4", "b05 · β = 0.5"]  # the legend names them too
    assert [(p.x[0], p.y[0]) for p in points] == [(3.0, 150.0), (14.0, 140.0)]
    assert [list(p.customdata[0]) for p in points] == [["b4 · β = 4", -153.0], ["b05 · β = 0.5", -154.0]]  # ELBO
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


def test_two_models_of_one_beta_are_two_names():
    fig = rate_distortion_figure([("conv", 1.0, 25.0, 80.0), ("2d", 1.0, 7.0, 135.0)])
    labels = [t.text[0] for t in fig.data if t.mode == "markers+text"]
    assert labels == ["conv · β = 1", "2d · β = 1"]


def test_axis_titles_carry_no_raw_notation():
    fig = rate_distortion_figure([("b", 1.0, 3.0, 150.0)])
    titles = [fig.layout.xaxis.title.text, fig.layout.yaxis.title.text]
    assert not [t for t in titles if "_" in t or "E_q" in t]  # "−E_q[log p(x|z)]" was written raw
    assert "<sub>q(z | x)</sub>" in titles[1]


def test_kl_ticks_are_round_decades():
    fig = kl_bars_figure([("m · β = 1", np.array([1.505, 0.873, 0.24]))], threshold=0.01)
    axis = fig.layout.yaxis
    assert list(axis.ticktext) == ["0.0001", "0.001", "0.01", "0.1", "1", "10"]
    assert list(axis.tickvals) == pytest.approx([1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0])
    lo, hi = axis.range
    assert lo == pytest.approx(-4) and hi > np.log10(1.505)  # the largest bar fits


def test_the_default_models_follow_the_active_model():
    from types import SimpleNamespace

    from services.compare import Candidate
    from ui.compare import Pick, default_labels

    def pick(name, beta=1.0, dataset="moons", kind="vae", recipe="r"):
        c = Candidate(name, dataset, (1, 28, 28), kind, beta, (dataset, recipe))
        return Pick(name, SimpleNamespace(name=name, source="committed"), c)

    ps = [pick("m"), pick("m4", 4.0), pick("m05", 0.5), pick("ae", kind="ae"), pick("conv", dataset="mnist")]
    ps.append(pick("2d", dataset="mnist", recipe="other"))
    options = {p.label: p for p in ps}
    assert default_labels(options, "m") == ["m05", "m", "m4"]  # the sweep, by β
    assert default_labels(options, "ae") == ["m05", "m", "m4", "ae"]  # the sweep of its data set, and itself
    assert default_labels(options, "conv") == ["conv", "2d"]  # no sweep on MNIST: itself and one alike
    assert default_labels(options, "uploaded") == ["m05", "m", "m4"]  # not among the options: the sweep


def test_labels_on_the_right_half_are_written_leftwards():
    fig = rate_distortion_figure([("low", 4.0, 1.0, 150.0), ("a-long-model-name", 0.5, 14.0, 140.0)])
    pos = [t.textposition for t in fig.data if t.mode == "markers+text"]
    assert pos == ["top right", "top left"]  # the rightmost label stays inside the figure
