"""Plotly figures of the pages, and reading a click on them back.

Figures take plain arrays and return a ``plotly.graph_objects.Figure``; the pages hand it to
``st.plotly_chart``. Plotly lives here only: ``services`` and ``vae`` never import it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly import colors

from services.maps import ellipse_outline

AXIS_TITLES = {"raw": ("z₁", "z₂"), "pca": ("PC 1", "PC 2"), "tsne": ("t-SNE 1", "t-SNE 2")}
MARGIN = {"l": 10, "r": 10, "t": 30, "b": 10}


def palette(n: int) -> list[str]:
    """n distinct colours: plotly's 10 qualitative ones, then the 26 of 'Alphabet', then a sampled scale."""
    if n <= 10:
        return list(colors.qualitative.Plotly[:n])
    if n <= 26:
        return list(colors.qualitative.Alphabet[:n])
    return colors.sample_colorscale("Turbo", [i / max(1, n - 1) for i in range(n)])


def ellipse_lines(centres: np.ndarray, axes: np.ndarray, k: float = 1.0) -> tuple[list, list]:
    """The ±kσ ellipses (a, b, θ) (N, 3) around centres (N, 2) as one line trace's x and y: breaks (None)
    between ellipses."""
    xs: list = []
    ys: list = []
    for centre, a in zip(np.asarray(centres), np.asarray(axes)):
        pts = ellipse_outline(centre, a, k, n=33)
        xs += [*pts[:, 0].tolist(), None]
        ys += [*pts[:, 1].tolist(), None]
    return xs, ys


def ellipse_trace(centres: np.ndarray, axes: np.ndarray, k: float, name: str, line: dict, **kw: Any) -> go.Scatter:
    """One line trace of the ±kσ ellipses (a, b, θ) (N, 3) around centres (N, 2), named ``name``."""
    xs, ys = ellipse_lines(centres, axes, k)
    return go.Scatter(x=xs, y=ys, mode="lines", name=name, hoverinfo="skip", line=line, **kw)


def _ellipse_traces(fig: go.Figure, xy: np.ndarray, ellipses: dict | None) -> None:
    """The posterior ellipses as SVG lines (drawn under the WebGL points); breaks (None) between ellipses."""
    if not ellipses:
        return

    if ellipses.get("all"):
        every = np.asarray(ellipses["all"][: len(xy)])
        grey = {"width": 0.6, "color": "rgba(128, 128, 128, 0.35)"}
        fig.add_trace(ellipse_trace(xy[: len(every)], every, 1.0, "±1σ of every point", grey))
    if ellipses.get("pick") is not None:
        i, a = ellipses["pick"], ellipses["axes"]
        for k, dash in ((1.0, "solid"), (2.0, "dash")):
            red = {"width": 2, "color": "#ff4b4b", "dash": dash}
            fig.add_trace(ellipse_trace(xy[[i]], np.asarray([a]), k, f"±{k:g}σ of #{i}", red))


def map_figure(
    xy: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    label_names: Sequence[str],
    indices: Sequence[int] | np.ndarray | None = None,
    upload_xy: np.ndarray | None = None,
    upload_names: Sequence[str] = (),
    axis_titles: tuple[str, str] = ("", ""),
    square: tuple[float, float] | None = None,
    height: int = 620,
    ellipses: dict | None = None,
) -> go.Figure:
    """The latent map: points xy (N, 2), one WebGL trace per label (customdata = image index), uploads
    upload_xy (M, 2) as stars (customdata = -1 - upload number), optionally a dashed square [lo, hi]^2
    (the manifold grid's extent), and the posterior ellipses of services.live_views.ellipse_payload as
    lines under the points (the picked point's ±1σ and ±2σ; faint ±1σ ones of every point)."""
    xy = np.asarray(xy, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    indices = np.arange(len(xy)) if indices is None else np.asarray(indices, dtype=np.int64)
    names = list(label_names) or ["?"]
    colours = palette(len(names))
    fig = go.Figure()
    _ellipse_traces(fig, xy, ellipses)
    for j, name in enumerate(names):
        sel = np.flatnonzero(labels == j)
        if len(sel) == 0:
            continue
        fig.add_trace(
            go.Scattergl(
                x=xy[sel, 0],
                y=xy[sel, 1],
                mode="markers",
                name=str(name),
                customdata=indices[sel],
                text=[str(name)] * len(sel),
                hovertemplate="%{text}<br>test image #%{customdata}<extra></extra>",
                marker={"size": 6, "color": colours[j], "opacity": 0.8},
            )
        )
    if upload_xy is not None and len(upload_xy):
        up = np.asarray(upload_xy, dtype=np.float32)
        fig.add_trace(  # WebGL too: a plain SVG trace would be drawn under the WebGL points
            go.Scattergl(
                x=up[:, 0],
                y=up[:, 1],
                mode="markers+text",
                name="your uploads",
                customdata=-1 - np.arange(len(up)),
                text=list(upload_names),
                textposition="top center",
                hovertemplate="upload: %{text}<extra></extra>",
                marker={"symbol": "star", "size": 22, "color": "gold", "line": {"color": "black", "width": 1.5}},
            )
        )
    if square is not None:
        lo, hi = square
        fig.add_shape(
            type="rect", x0=lo, y0=lo, x1=hi, y1=hi, line={"dash": "dash", "color": "grey", "width": 1.5}, layer="above"
        )
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        legend={
            "itemsizing": "constant",
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.01,
            "x": 0,
            "title": {"text": "label (click to hide):"},
        },
        xaxis_title=axis_titles[0],
        yaxis_title=axis_titles[1],
        clickmode="event+select",
        dragmode="pan",
    )
    return fig


def selected_index(points: Sequence[Mapping[str, Any]] | None) -> int | None:
    """The test-image index of the last clicked point of a :func:`map_figure` (from its customdata), or None.

    ``points`` is a Streamlit chart event's ``selection.points``. Test points carry their image index
    as customdata; uploads carry negative numbers and are ignored.
    """
    for p in reversed(list(points or [])):
        cd = p.get("customdata") if isinstance(p, Mapping) else None
        if isinstance(cd, (list, tuple)):
            cd = cd[0] if cd else None
        try:
            i = int(cd)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if i >= 0:
            return i
    return None


def distance_figure(series: Sequence[tuple[str, np.ndarray]], y_title: str, height: int = 300) -> go.Figure:
    """One line per (name, values (S,)) over the S steps of a path (the Interpolate page's chart)."""
    fig = go.Figure()
    for name, values in series:
        fig.add_trace(go.Scatter(x=list(range(len(values))), y=values, mode="lines+markers", name=name))
    fig.update_layout(height=height, margin=MARGIN, xaxis_title="step", yaxis_title=y_title)
    return fig


def score_histogram(
    reference: np.ndarray,
    marks: Sequence[tuple[str, float]],
    what: str = "ELBO",
    height: int = 260,
    x_title: str = "nats per image (higher: more typical)",
    limit: tuple[str, float] | None = None,
) -> go.Figure:
    """A histogram of the test images' scores (N,) with a labelled vertical line per (name, score), and a
    dashed line at ``limit`` (label, value) when given (the verdict's threshold)."""
    fig = go.Figure(go.Histogram(x=reference, nbinsx=60, name="test images", marker_color="#7f8fa6"))
    for name, score in marks:
        fig.add_vline(x=score, line_color="#e84118", line_width=2, annotation_text=name[:24])
    if limit is not None:
        fig.add_vline(
            x=limit[1],
            line_color="#273c75",
            line_dash="dash",
            annotation_text=limit[0],
            annotation_position="bottom right",
        )
    fig.update_layout(
        height=height,
        margin=MARGIN,
        title=f"Where the images fall among {len(reference):,} test images' {what}",
        xaxis_title=x_title,
        yaxis_title="test images",
        showlegend=False,
    )
    return fig


def pad_figure(
    mosaic: Any, xs: np.ndarray, ys: np.ndarray, here: tuple[float, float], titles: tuple[str, str]
) -> go.Figure:
    """The server-side 2-D pad: the decoded grid ``mosaic`` (a PIL image, xs across, ys from the top)
    under clickable points at the grid's codes (customdata: [x, y]) and a star at the current code."""
    dx = (xs[-1] - xs[0]) / max(len(xs) - 1, 1)
    dy = (ys[0] - ys[-1]) / max(len(ys) - 1, 1)
    gx, gy = np.meshgrid(xs, ys)
    fig = go.Figure()
    fig.add_layout_image(
        source=mosaic,
        xref="x",
        yref="y",
        x=xs[0] - dx / 2,
        y=ys[0] + dy / 2,
        sizex=dx * len(xs),
        sizey=dy * len(ys),
        sizing="stretch",
        layer="below",
    )
    fig.add_trace(
        go.Scatter(
            x=gx.ravel().tolist(),  # lists, not plotly's base64 arrays: the spec stays readable
            y=gy.ravel().tolist(),
            mode="markers",
            # a clear square over each picture: a click anywhere on it selects that code
            marker={"symbol": "square", "size": 40, "color": "rgba(0, 0, 0, 0)", "line": {"width": 0}},
            customdata=np.stack([gx.ravel(), gy.ravel()], axis=1).tolist(),
            hovertemplate=f"{titles[0]} = %{{x:+.2f}}<br>{titles[1]} = %{{y:+.2f}}<extra>click to go there</extra>",
            name="grid",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[here[0]],
            y=[here[1]],
            mode="markers",
            marker={"symbol": "star", "size": 16, "color": "orange", "line": {"width": 1, "color": "black"}},
            hoverinfo="skip",
            name="the code now",
        )
    )
    fig.update_xaxes(range=[xs[0] - dx / 2, xs[-1] + dx / 2], title=titles[0], showgrid=False, zeroline=False)
    fig.update_yaxes(range=[ys[-1] - dy / 2, ys[0] + dy / 2], title=titles[1], showgrid=False, zeroline=False)
    fig.update_layout(height=460, width=480, margin=MARGIN, showlegend=False, clickmode="event+select", dragmode=False)
    return fig
