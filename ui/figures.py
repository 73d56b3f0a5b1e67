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

from services.map_geometry import ellipse_outline, label_offset, place_labels, ticks
from services.map_overlays import extent

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


# How each overlay of services.map_overlays is drawn, here and by static/live/map_overlays.mjs: its legend
# name ({i}: the point it belongs to) and style (colour None: each point's label colour; dash in pixels).
OVERLAY_STYLES = {
    "square": {"name": "the manifold grid", "colour": "grey", "width": 1.5, "dash": [6, 4]},
    "clouds": {"name": "±1σ of every point", "colour": None, "width": 1, "alpha": 0.18, "fill": 0.04},
    "pick1": {"name": "±1σ of #{i}", "colour": "#ff4b4b", "width": 2, "dash": []},
    "pick2": {"name": "±2σ of #{i}", "colour": "#ff4b4b", "width": 2, "dash": [6, 4]},
    "neighbours": {"name": "nearest in z to #{i}", "colour": "#00c8ff", "width": 1.5, "radius": 6},
    "uploads": {"name": "your uploads", "colour": "gold", "edge": "black", "width": 1.5, "radius": 11, "font": 12},
}
LABEL_CHARS = 16  # an upload's name is cut to this many characters on the map (the panel shows it whole)


def abbreviate(name: str, n: int = LABEL_CHARS) -> str:
    """``name`` in at most n characters, cut in the middle (the end tells uploads apart: 'photo-2.png')."""
    if len(name) <= n:
        return name
    tail = (n - 1) // 2
    return name[: n - 1 - tail] + "…" + name[len(name) - tail :]


def styled(layers: Sequence[Mapping[str, Any]]) -> list[dict]:
    """The overlays with their ``name`` and ``style`` (OVERLAY_STYLES); star names :func:`abbreviate`d."""
    out = []
    for d in layers:
        style = OVERLAY_STYLES[d["id"]]
        owner = d.get("of", (d.get("at") or [None])[0])
        layer = {**d, "name": style["name"].format(i=owner), "style": {k: v for k, v in style.items() if k != "name"}}
        if d["kind"] == "stars":
            layer["text"] = [abbreviate(t) for t in d["text"]]
            layer["title"] = list(d["text"])
        out.append(layer)
    return out


def _dash(style: Mapping[str, Any]) -> str:
    return ",".join(f"{v}px" for v in style.get("dash") or []) or "solid"


def _rgba(colour: str, alpha: float) -> str:
    """A hex or rgb(...) colour with opacity ``alpha`` (a named colour is kept as it is at alpha 1)."""
    if alpha == 1.0 and not colour.startswith(("#", "rgb")):
        return colour
    r, g, b = colors.hex_to_rgb(colour) if colour.startswith("#") else colors.unlabel_rgb(colour)
    return f"rgba({r:g}, {g:g}, {b:g}, {alpha})"


def _ellipse_layer(fig: go.Figure, xy: np.ndarray, labels: np.ndarray, colours: list[str], d: Mapping) -> None:
    """One ellipse layer as line traces (SVG, under the WebGL points): one per label colour if unstyled."""
    at, axes, style = np.asarray(d["at"], dtype=np.int64), np.asarray(d["axes"]), d["style"]
    groups = [(style["colour"], np.arange(len(at)))] if style["colour"] else []
    groups = groups or [(colours[j], np.flatnonzero(labels[at] == j)) for j in range(len(colours))]
    for g, (colour, sel) in enumerate(c for c in groups if len(c[1])):
        line = {"width": style["width"], "color": _rgba(colour, style.get("alpha", 1.0)), "dash": _dash(style)}
        fig.add_trace(
            ellipse_trace(xy[at[sel]], axes[sel], d["k"], d["name"], line, legendgroup=d["id"], showlegend=g == 0)
        )


def _home_pixels(x: np.ndarray, y: np.ndarray, home: tuple, size: tuple[float, float]) -> np.ndarray:
    """Data positions as pixels of a plot area ``size`` (w, h) showing ``home`` (x0, x1, y0, y1), y down."""
    x0, x1, y0, y1 = home
    return np.stack([(x - x0) / (x1 - x0) * size[0], (1 - (y - y0) / (y1 - y0)) * size[1]], axis=1)


def _star_layer(fig: go.Figure, d: Mapping, home: tuple, size: tuple[float, float]) -> None:
    """The uploads as WebGL stars (over the points) and their names placed where they do not collide."""
    style, x, y = d["style"], np.asarray(d["x"], float), np.asarray(d["y"], float)
    marker = {"symbol": "star", "size": 2 * style["radius"], "color": style["colour"]}
    fig.add_trace(
        go.Scattergl(
            x=x, y=y, mode="markers", name=d["name"], customdata=-1 - np.arange(len(x)), text=d["title"],
            hovertemplate="upload: %{text}<extra></extra>",
            marker={**marker, "line": {"color": style["edge"], "width": style["width"]}},
        )
    )  # fmt: skip
    px = _home_pixels(x, y, home, size)
    font = style["font"]
    char = 0.6 * font  # an average glyph's width: the browser measures, this figure estimates
    widths = [[len(t) * char, len(s) * char] for t, s in zip(d["text"], d["short"])]
    spots = place_labels(px.tolist(), widths, font + 2, style["radius"], (0, 0, *size))
    for u, got in enumerate(spots):
        if got is not None:
            text = (d["text"], d["short"])[got[1]][u]
            dx, dy = label_offset(got[0], widths[u][got[1]], font + 2, style["radius"])
            fig.add_annotation(x=x[u], y=y[u], text=text, showarrow=False, xshift=dx, yshift=-dy, font={"size": font})


def _overlay(fig: go.Figure, xy: np.ndarray, labels: np.ndarray, colours: list[str], d: Mapping, home: tuple) -> None:
    style = d["style"]
    if d["kind"] == "rect":
        (x0, x1), (y0, y1) = d["x"], d["y"]
        line = {"dash": _dash(style), "color": style["colour"], "width": style["width"]}
        fig.add_shape(type="rect", x0=x0, y0=y0, x1=x1, y1=y1, line=line, layer="above")
    elif d["kind"] == "ellipses":
        _ellipse_layer(fig, xy, labels, colours, d)
    elif d["kind"] == "rings":
        at = np.asarray(d["at"], dtype=np.int64)
        ring = {"symbol": "circle-open", "size": 2 * style["radius"], "color": style["colour"], "line": {"width": 2}}
        fig.add_trace(
            go.Scattergl(x=xy[at, 0], y=xy[at, 1], mode="markers", name=d["name"], marker=ring, hoverinfo="skip")
        )
    elif d["kind"] == "stars":
        _star_layer(fig, d, home, PLOT_AREA)


PLOT_AREA = (700.0, 520.0)  # pixels: the fallback figure's plotting area, as placing its labels assumes
UNDER = ("rect", "ellipses")  # overlay kinds drawn under the points; the others over them


def _point_traces(fig: go.Figure, xy: np.ndarray, labels: np.ndarray, names: list[str], colours: list[str]) -> None:
    """One WebGL trace per label, customdata = image index."""
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
                customdata=sel,
                text=[str(name)] * len(sel),
                hovertemplate="%{text}<br>test image #%{customdata}<extra></extra>",
                marker={"size": 6, "color": colours[j], "opacity": 0.8},
            )
        )


def map_figure(
    xy: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    label_names: Sequence[str],
    overlays: Sequence[Mapping[str, Any]] = (),
    axis_titles: tuple[str, str] = ("", ""),
    height: int = 620,
) -> go.Figure:
    """The latent map: points xy (N, 2), one WebGL trace per label (customdata = image index), and the
    :func:`styled` overlays of services.map_overlays as the live view draws them: lines, rings, the
    uploads as stars (customdata = -1 - upload number). The home view and its ticks are the live view's."""
    xy = np.asarray(xy, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    names = list(label_names) or ["?"]
    colours = palette(len(names))
    home = extent(xy[:, 0].tolist(), xy[:, 1].tolist(), overlays)
    fig = go.Figure()
    for d in overlays:  # lines under the points, as in the live view
        if d["kind"] in UNDER:
            _overlay(fig, xy, labels, colours, d, home)
    _point_traces(fig, xy, labels, names, colours)
    for d in overlays:
        if d["kind"] not in UNDER:
            _overlay(fig, xy, labels, colours, d, home)
    legend = {"itemsizing": "constant", "orientation": "h", "yanchor": "bottom", "y": 1.01, "x": 0}
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        legend={**legend, "title": {"text": "label (click to hide):"}},
        clickmode="event+select",
        dragmode="pan",
    )
    for axis, (lo, hi), n, title in (
        (fig.update_xaxes, home[:2], 6, axis_titles[0]),
        (fig.update_yaxes, home[2:], 5, axis_titles[1]),
    ):
        axis(range=[lo, hi], tickmode="linear", tick0=0.0, dtick=ticks(lo, hi, n)[1], title=title)
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
