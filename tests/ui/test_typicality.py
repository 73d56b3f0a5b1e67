"""ui.typicality: the verdict's words, the summary table's short cell, and the S histogram (clipped axis,
numbered markers that do not collide)."""

from __future__ import annotations

import math

import numpy as np

from services.scoring import LEVEL_BINS, TESTS, Reference, judge
from ui.typicality import _levels, limits_caption, s_histogram, short_verdict, verdict
from vae.config import ModelConfig

CFG = ModelConfig(image_shape=(1, 28, 28), hidden=(16,), latent_dim=2)


def _ref(n: int = 200) -> Reference:
    rng = np.random.default_rng(0)
    codelength = rng.normal(200, 20, n)
    probs = np.full(LEVEL_BINS - 1, 1 / (LEVEL_BINS - 1))
    return Reference(
        -codelength * math.log(2),
        codelength,
        rng.normal(500, 20, n),
        rng.uniform(0, 0.02, n),
        rng.uniform(2.0, 3.0, n),
        probs,
    )


def _judge(codelength: float, complexity: float, dist: float, levels: float = 2.5):
    return judge(-codelength * math.log(2), complexity, dist, levels, _ref(), CFG)


def test_the_verdict_says_which_test_failed_and_why():
    simple = _judge(150, 160, 0.01)
    assert verdict(simple).startswith("Out of distribution") and "saves fewer bits over a generic compressor" in (
        verdict(simple)
    )
    unlikely = _judge(900, 1300, 0.01)
    assert "the model needs 900 bits" in verdict(unlikely)
    assert "its reconstruction costs 900 bits" in verdict(unlikely, deterministic=True)
    unexplained = _judge(200, 500, 0.05)
    text = verdict(unexplained)
    assert "its reconstruction is not the image" in text and "0.0500" in text and "generic compressor" not in text
    assert verdict(_judge(200, 500, 0.01)).startswith("Typical for this model")
    assert limits_caption(unexplained, False).count("✗") == 1 and limits_caption(unexplained, False).count("✓") == 3


def test_the_grey_levels_test_is_named_and_explained():
    """The fourth test (a shaded moon on an MNIST model): the sentence, the caption's line and the cell say it."""
    grey = _judge(200, 500, 0.01, levels=3.5)
    assert grey.failed == ("levels",)
    text = verdict(grey)
    assert text.startswith("Out of distribution") and "its grey levels are unlike the test images'" in text
    assert "3.50 bits" in text and "99.5th percentile" in text and "reconstruction is not" not in text
    caption = limits_caption(grey, False)
    assert caption.count("✗") == 1 and "✗ **grey**" in caption and "3.50 bits a lit pixel" in caption
    assert short_verdict(grey.failed) == "OOD: grey"
    assert "grey levels" in verdict(_judge(200, 500, 0.01))  # a typical image passed it too


def test_short_verdict_fits_a_cell():
    assert short_verdict(()) == "typical" and short_verdict(None) is None
    assert short_verdict(("simple", "unlikely", "unexplained")) == "OOD: S, −log p, x̂ ≠ x"
    assert len(short_verdict(("simple", "unlikely", "unexplained"))) <= 24  # the old cell was 46 characters
    assert short_verdict(TESTS) == "OOD: S, −log p, x̂ ≠ x, grey" and len(short_verdict(TESTS)) <= 28


def test_levels_keep_close_markers_apart():
    rows = _levels(np.array([0.0, 0.01, 0.02, 5.0]), gap=0.5)
    assert rows == [0, 1, 2, 0]
    assert _levels(np.array([3.0, 1.0]), gap=0.5) == [0, 0]


def test_a_far_outlier_is_clipped_and_named_in_the_legend():
    """The issue's sliver: one upload at S = 4,217 bits beside test images between -300 and -150."""
    ref = np.random.default_rng(1).uniform(-300, -150, 500)
    marks = [("moon.png", -220.0), ("digit3impgdrawing", 4217.0), ("drawing 2", -219.0)]
    fig, clipped = s_histogram(ref, marks, limit=-160.0)
    lo, hi = fig.layout.xaxis.range
    assert clipped == 1 and hi < 0 and lo < -300  # the axis spans the test images, not the outlier
    points = [t for t in fig.data if t.type == "scatter"]
    assert [p.text[0] for p in points] == ["<b>1</b>", "<b>2</b>", "<b>3</b>"]
    assert ref.max() < points[1].x[0] < hi and points[1].marker.symbol == "triangle-right"  # at the edge, inside
    assert "4,217" in points[1].name and "beyond the axis" in points[1].name
    assert points[0].y[0] != points[2].y[0]  # -220 and -219: two rows, not one pile of labels
    assert "digit3impgdrawing" in points[1].name and not [a for a in fig.layout.annotations if "digit" in a.text]


def test_marks_near_the_test_images_are_not_clipped():
    ref = np.linspace(-300, -150, 100)
    fig, clipped = s_histogram(ref, [("a", -100.0)], limit=-160.0)
    assert clipped == 0 and fig.layout.xaxis.range[1] > -100
