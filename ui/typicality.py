"""The words and the chart of the Reconstruct page's typicality verdict (services.scoring computes it).

Four tests, each calibrated on the model's test images: S(x) (Serrà et al. 2020), the codelength
-log2 p(x), the reconstruction's distortion mean (x - x_hat)^2 and the grey levels of the image's lit
pixels under the test images' histogram of levels. Here each is named, explained, and the test images'
S is drawn with the scored images on it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from services.scoring import PERCENTILES, TESTS, Typicality
from ui.figures import MARGIN

Q = {t: f"{q:g}" for t, q in PERCENTILES.items()}  # "99.5": each test's percentile as written
# A few characters per failed test for the summary table's cell; the column's help and the caption say more.
SHORT = {"simple": "S", "unlikely": "−log p", "unexplained": "x̂ ≠ x", "levels": "grey"}
VERDICT_HELP = (
    "typical: passes all four tests. OOD (out of distribution) names the tests it fails: "
    "S — S(x) too high (too simple for the model); −log p — the model's codelength too high (unlikely); "
    "x̂ ≠ x — the reconstruction too far from the image; grey — its pixels' grey levels unlike the test "
    f"images'. The limits are the {Q['simple']}th, {Q['unlikely']}th, {Q['unexplained']}th and {Q['levels']}th "
    "percentiles of the test images' values."
)
MARK_COLOURS = ("#e84118", "#0097e6", "#8c7ae6", "#e1b12c", "#44bd32", "#c23616", "#353b48", "#40739e")
CLIP_SPANS = 1.0  # marks within this many widths of the test images' range are drawn where they are


def short_verdict(failed: Sequence[str] | None) -> str | None:
    """The summary table's cell: 'typical', or 'OOD: ' and the short names of the failed tests."""
    if failed is None:
        return None
    return "typical" if not failed else "OOD: " + ", ".join(SHORT[t] for t in TESTS if t in failed)


def _reason(t: Typicality, test: str, deterministic: bool) -> str:
    if test == "simple":
        return (
            f"S(x) = {t.s:+,.0f} bits, above {t.s_limit:+,.0f} ({Q[test]}th percentile of test images): the model "
            f"saves fewer bits over a generic compressor (zlib) on it than on {Q[test]}% of its test images, so "
            "what it knows of the data does not explain this image"
        )
    if test == "unlikely":
        cost = "its reconstruction costs" if deterministic else "the model needs"
        return f"{cost} {t.codelength:,.0f} bits, more than for {Q[test]}% of its test images: it is unlikely"
    if test == "unexplained":
        return (
            f"its reconstruction is not the image: the mean squared error (x − x̂)² is {t.distortion:.4f} a pixel, "
            f"above {t.distortion_limit:.4f} ({Q[test]}th percentile of test images): the model does not explain it"
        )
    return (
        f"its grey levels are unlike the test images': coded with their histogram of the lit pixels' levels, "
        f"its lit pixels take {t.levels:.2f} bits each, above {t.levels_limit:.2f} ({Q[test]}th percentile of "
        "test images), so its shading or strokes are not drawn like theirs"
    )


def verdict(t: Typicality, deterministic: bool = False) -> str:
    """A sentence on what the image's numbers mean; ``deterministic`` for an AE's wording."""
    if t.typical:
        cost = "−log₂ p(x|ẑ)" if deterministic else "−log₂ p(x)"
        return (
            f"Typical for this model: its S(x), its {cost}, its reconstruction error (x − x̂)² and its grey "
            f"levels are each below their limit, a high percentile ({Q['simple']}, {Q['unlikely']}, "
            f"{Q['unexplained']}, {Q['levels']}) of its {t.n:,} test images' values."
        )
    return "Out of distribution: " + "; and ".join(_reason(t, f, deterministic) for f in t.failed) + "."


def limits_caption(t: Typicality, deterministic: bool) -> str:
    """The four tests' numbers against their limits, a line each (Markdown line breaks), ✓ passed, ✗ failed."""
    cost = "−log₂ p(x|ẑ)" if deterministic else "−ELBO/ln 2 ≥ −log₂ p(x)"
    ok = {name: "✗" if name in t.failed else "✓" for name in t.limits()}
    lines = (
        f"{ok['simple']} **S**: S(x) = {t.codelength:,.0f} bits ({cost}) − {t.complexity:,.0f} bits (L(x), "
        f"zlib) = {t.s:+,.0f} bits; limit {t.s_limit:+,.0f} ({Q['simple']}th percentile)",
        f"{ok['unlikely']} **−log p**: {t.codelength:,.0f} bits (percentile {t.codelength_percentile:.1f}); "
        f"limit {t.codelength_limit:,.0f} ({Q['unlikely']}th percentile)",
        f"{ok['unexplained']} **x̂ ≠ x**: (x − x̂)² = {t.distortion:.4f} a pixel (percentile "
        f"{t.distortion_percentile:.1f}); limit {t.distortion_limit:.4f} ({Q['unexplained']}th percentile)",
        f"{ok['levels']} **grey**: grey levels {t.levels:.2f} bits a lit pixel under the test images' "
        f"histogram, before any binarization (percentile {t.levels_percentile:.1f}); limit {t.levels_limit:.2f} "
        f"({Q['levels']}th percentile)",
    )
    return "  \n".join(lines)


def _window(ref: np.ndarray, limit: float, values: np.ndarray) -> tuple[float, float, float]:
    """(lo, hi, pad): the test images and the limit, widened to the marks within CLIP_SPANS widths of them;
    the axis spans lo - 2 pad .. hi + 2 pad, and a mark beyond is drawn at lo - pad or hi + pad."""
    lo, hi = min(float(ref.min()), limit), max(float(ref.max()), limit)
    span = max(hi - lo, 1e-9)
    near = values[(values >= lo - CLIP_SPANS * span) & (values <= hi + CLIP_SPANS * span)]
    lo, hi = min(lo, *near, lo), max(hi, *near, hi)
    return lo, hi, 0.03 * (hi - lo or 1.0)


def _levels(xs: np.ndarray, gap: float, rows: int = 10) -> list[int]:
    """A row for each marker so that no two on a row are closer than ``gap`` in x: greedy, from the left,
    each marker on the lowest free row (``rows`` at most, then the rows are reused)."""
    last: list[float] = []  # the rightmost marker's x on each row
    out = [0] * len(xs)
    for i in np.argsort(xs, kind="stable"):
        row = next((r for r, x in enumerate(last) if xs[i] - x >= gap), len(last))
        if row == len(last):
            last.append(float(xs[i]))
        else:
            last[row] = float(xs[i])
        out[i] = row % rows
    return out


def s_histogram(ref: np.ndarray, marks: Sequence[tuple[str, float]], limit: float, height: int = 300):
    """The test images' S (N,) as a histogram, each scored image a numbered marker (the legend names it) and
    the limit dashed. Marks far beyond the test images are drawn at the axis' edge with their true S in the
    legend: returns (figure, how many were clipped)."""
    values = np.array([s for _, s in marks], dtype=float)
    lo, hi, pad = _window(ref, limit, values)
    shown = np.clip(values, lo - pad, hi + pad)
    fig = go.Figure(go.Histogram(x=ref, nbinsx=60, name="test images", marker_color="#7f8fa6", showlegend=False))
    fig.add_vline(x=limit, line_color="#273c75", line_dash="dash", layer="below")
    fig.add_annotation(
        x=limit, y=0, yref="paper", text=f"{Q['simple']}th pct", showarrow=False, xanchor="left", yanchor="bottom"
    )
    rows = _levels(shown, 0.04 * (hi - lo + 4 * pad))  # about a marker's width
    for i, ((name, s), x, row) in enumerate(zip(marks, shown, rows)):
        colour = MARK_COLOURS[i % len(MARK_COLOURS)]
        clipped = x != s
        fig.add_vline(x=x, line_color=colour, line_width=2, line_dash="dot" if clipped else "solid", layer="below")
        fig.add_scatter(
            x=[x],
            y=[0.95 - 0.09 * row],
            yaxis="y2",
            mode="markers+text",
            text=[f"<b>{i + 1}</b>"],
            textfont={"color": "white", "size": 12},
            marker={
                "size": 22,
                "color": colour,
                "symbol": {1: "triangle-right", -1: "triangle-left"}.get(int(np.sign(s - x)), "circle"),
            },
            name=f"{i + 1} · {name[:40]}: S = {s:+,.0f} bits" + (" (beyond the axis)" if clipped else ""),
            hovertemplate=f"{name}<br>S = {s:+,.0f} bits<extra></extra>",
        )
    fig.update_layout(
        height=height + 22 * ((len(marks) + 1) // 2),
        margin=MARGIN,
        title=f"Where the images fall among {len(ref):,} test images' S(x)",
        xaxis={"title": "S(x) = −log₂ p(x) − L(x), bits (higher: less typical)", "range": [lo - 2 * pad, hi + 2 * pad]},
        yaxis_title="test images",
        yaxis2={"overlaying": "y", "range": [0, 1], "visible": False},
        legend={"orientation": "h", "y": -0.3, "x": 0},
    )
    return fig, int(np.count_nonzero(shown != values))
