"""The Interpolate page's moon argument: each frame's fitted phase, and the latent plane where the VAE's
noise clouds cover the path while the AE's points leave it bare (services.moons)."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from plotly.subplots import make_subplots

import services.moons
from services.disk_cache import cached, digest, source_of
from services.explore import Codes
from services.maps import ellipse_axes
from services.moons import MOON_FIT_LIMIT, MoonFit, MoonPlane, fit_moons, moon_plane, story
from ui.figures import MARGIN, ellipse_trace
from vae.checkpoint import Checkpoint
from vae.data import PHASE_NAMES, phase_class
from vae.models import VAE

# The eight phases around the colour wheel: neighbours in phase get neighbouring hues.
PHASE_COLOURS = ["#4c4c66", "#6a5acd", "#1f77b4", "#17becf", "#f2c14e", "#ff7f0e", "#d62728", "#9467bd"]
# Codes drawn per panel: every code is an SVG point the browser styles one by one (5,000 a panel took ~2 s of
# the browser's CPU per page open, benchmarks/load.py --browser); an even sample shows the same clouds.
PLANE_POINTS = 1000


def _moons_code() -> str:
    """The source the fits and planes depend on: this module's moons services and the module that
    renders and fits moons (read through services.moons, so that a test's stand-in changes no key)."""
    modules = dict.fromkeys([services.moons, inspect.getmodule(services.moons.fit_moons)])
    return source_of(*modules) + np.__version__


@st.cache_data(show_spinner=False, max_entries=64)
def fit_frames(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`services.moons.fit_moons` of frames (N, 1, S, S), cached by their pixels, in memory and on
    disk (the default path's frames are the same in every session): (phase, error, side)."""
    key = f"{digest(frames)}:{_moons_code()}"
    f = cached(MoonFit, "moonfit", key, lambda: fit_moons(torch.from_numpy(frames)))
    return f.phase.numpy(), f.error.numpy(), f.side_clear.numpy()


def fits(rows: Sequence[torch.Tensor]) -> list[MoonFit]:
    """One moon fit per row of frames, fitted in one batch."""
    phase, error, side = fit_frames(torch.cat(list(rows)).numpy())
    out, i = [], 0
    for r in rows:
        sl = slice(i, i + len(r))
        out.append(MoonFit(torch.from_numpy(phase[sl]), torch.from_numpy(error[sl]), torch.from_numpy(side[sl])))
        i += len(r)
    return out


def row_caption(fit: MoonFit) -> str:
    """Each frame's fitted phase: "full moon 100% lit (fit 0.043) · gibbous 93% lit (fit 0.039) · …"."""
    return " · ".join(fit.caption(i) for i in range(len(fit.phase)))


def step_names(n: int) -> list[str]:
    """The n steps of a path as the table and the hover name them: A, 1, ..., n - 2, B."""
    return ["A"] + [str(i) for i in range(1, n - 1)] + ["B"]


def _panel(fig: go.Figure, col: int, plane: MoonPlane, show_legend: bool) -> None:
    """One model's plane: data codes by phase, their noise (VAE), the ends' ±1σ/±2σ and the path."""
    drawn = np.linspace(0, len(plane.codes) - 1, min(PLANE_POINTS, len(plane.codes))).round().astype(int)
    cls, codes = phase_class(plane.data_phase[drawn]), plane.codes[drawn]
    for k, name in enumerate(PHASE_NAMES):
        m = cls == k
        fig.add_trace(
            go.Scatter(
                x=codes[m, 0],
                y=codes[m, 1],
                mode="markers",
                name=name,
                legendgroup=name,
                showlegend=show_legend,
                marker={"size": 4, "color": PHASE_COLOURS[k], "opacity": 0.55},
                hovertemplate=f"{name}<extra></extra>",
            ),
            row=1,
            col=col,
        )
    where = {"row": 1, "col": col}
    if plane.covs is not None:
        # The noise of the codes nearest the path: the clouds the argument is about.
        near = np.argsort(np.linalg.norm(plane.codes[:, None] - plane.path[None], axis=-1).min(1))[:60]
        grey = {"width": 0.8, "color": "rgba(150,150,150,0.7)"}
        name = "±1σ of q(z|x), codes near the path"
        axes = ellipse_axes(plane.covs[near])
        fig.add_trace(ellipse_trace(plane.codes[near], axes, 1.0, name, grey, showlegend=show_legend), **where)
    if plane.end_covs is not None:
        for k, dash in ((1.0, "solid"), (2.0, "dash")):
            red = {"width": 2, "color": "#ff4b4b", "dash": dash}
            trace = ellipse_trace(
                plane.path[[0, -1]], ellipse_axes(plane.end_covs), k, f"±{k:g}σ of A and B", red, showlegend=show_legend
            )
            fig.add_trace(trace, **where)
    steps = step_names(len(plane.path))
    if plane.covered is not None:
        colour = ["#2ca02c" if c > 0 else "#000000" for c in plane.covered]
        hover = [f"step {s}: inside the 95% noise region of {c} data codes" for s, c in zip(steps, plane.covered)]
    else:
        ratio = plane.nearest / max(plane.spacing, 1e-12)
        colour = ["#000000"] * len(plane.path)
        hover = [f"step {s}: {r:.1f}× the codes' usual spacing from the nearest code" for s, r in zip(steps, ratio)]
    # Only the ends are written on the plot: nine numbers crowd it (the hover and the table name the steps).
    labels = ["A"] + [""] * (len(plane.path) - 2) + ["B"]
    fig.add_trace(
        go.Scatter(
            x=plane.path[:, 0],
            y=plane.path[:, 1],
            mode="lines+markers+text",
            text=labels,
            textposition="top center",
            textfont={"size": 14},
            name="path",
            showlegend=show_legend,
            hovertext=hover,
            hoverinfo="text",
            line={"color": "#000000", "width": 1.5},
            marker={"size": 9, "color": colour, "line": {"width": 1, "color": "#ffffff"}},
        ),
        row=1,
        col=col,
    )


def plane_figure(planes: Sequence[tuple[str, MoonPlane]]) -> go.Figure:
    """The models' latent planes side by side (equal axes in each)."""
    fig = make_subplots(rows=1, cols=len(planes), subplot_titles=[t for t, _ in planes], horizontal_spacing=0.06)
    for col, (_, plane) in enumerate(planes, start=1):
        _panel(fig, col, plane, show_legend=col == 1)
        fig.update_xaxes(title_text="towards B", row=1, col=col)
        fig.update_yaxes(
            title_text="the codes' main spread across it", scaleanchor=f"x{col if col > 1 else ''}", row=1, col=col
        )
    fig.update_layout(height=460, margin={**MARGIN, "t": 50}, legend={"orientation": "h", "y": -0.2})
    return fig


@torch.no_grad()
def plane_of(
    model: VAE, codes: Codes, ref_phase: torch.Tensor, xa: torch.Tensor, xb: torch.Tensor, z: torch.Tensor
) -> MoonPlane:
    """A model's plane for a path z (S, D) between the codes of xa and xb, among the reference images'
    codes (their phases (N,)); kept on disk by its inputs (the default path's is the same in every session)."""
    model.eval()
    q = model.encode(torch.stack([xa, xb]).to(model.device))
    end_std = None if q.deterministic else q.std.cpu()
    key = f"{digest(codes.mean, codes.std, ref_phase, z, end_std)}:{_moons_code()}"
    return cached(MoonPlane, "moonplane", key, lambda: moon_plane(codes.mean, codes.std, ref_phase, z, end_std))


def verdict(title: str, fit: MoonFit, kind: str) -> str:
    """What the fitted frames of one model's path say, in one sentence."""
    s = story(fit)
    inner = fit.error[1:-1]
    if kind == "vae":
        moons = f"{int((inner <= MOON_FIT_LIMIT).sum())} of {len(inner)} in-between frames fit a moon"
    else:
        mid = len(fit.error) // 2
        moons = (
            f"its midpoint {'fits a moon' if bool(fit.is_moon[mid]) else 'fits no moon'} "
            f"(fit {float(fit.error[mid]):.3f})"
        )
    order = "one way" if s["in_order"] else "back and forth"
    lit = f"{100 * float(fit.lit[0]):.0f}% → {100 * float(fit.lit[-1]):.0f}% lit, {order}"
    unclear = len(fit.phase) - 2 - s["waxing"] - s["waning"]
    sides = f"{s['waxing']} read as waxing, {s['waning']} as waning, {unclear} unclear"
    return f"**{title}**: {moons}; the lit fraction goes {lit}; of the in-between frames {sides}."


def step_table(fits_by_title: Sequence[tuple[str, MoonFit]], planes: Sequence[tuple[str, MoonPlane]]) -> dict:
    """Per step of the path: each model's fitted frame, and (VAE) whose noise covers it, (AE) how bare it is."""
    n = len(fits_by_title[0][1].phase)
    table: dict[str, list] = {"step": step_names(n)}
    for (title, fit), (_, plane) in zip(fits_by_title, planes):
        title = title.split(" · ")[0]  # "VAE" or "AE": the full titles are the planes' and the verdicts'
        # Short cells (the full caption is on the strips): the grid cuts what does not fit its column at 1400 px.
        table[f"{title} frame"] = [
            f"{fit.name(i)} {100 * float(fit.lit[i]):.0f}% · {'moon' if bool(fit.is_moon[i]) else 'no moon'}"
            for i in range(n)
        ]
        if plane.covered is not None:
            table[f"{title}: covered by"] = [
                f"{c}; {100 * s:.0f}% {p}" for c, p, s in zip(plane.covered, plane.cover_phase, plane.cover_share)
            ]
        else:
            table[f"{title}: nearest code"] = [
                f"{d / max(plane.spacing, 1e-12):.1f}× the usual spacing" for d in plane.nearest
            ]
    return table


def moon_argument(
    paths: Sequence[tuple[str, str, Checkpoint, torch.Tensor]],
    codes: Sequence[Codes],
    row_fits: Sequence[MoonFit],
    xa: torch.Tensor,
    xb: torch.Tensor,
    ref_phase: torch.Tensor,
) -> None:
    """The section, for paths (title, key, checkpoint, z (S, D)) among each model's reference codes
    (phases (N,)): the planes, the verdicts and the step table."""
    st.subheader("The moon argument, in the latent space")
    with st.spinner("Laying out the path among the training codes and their noise…"):
        planes = [(t, plane_of(ck.model, c, ref_phase, xa, xb, z)) for (t, _, ck, z), c in zip(paths, codes)]
    st.plotly_chart(plane_figure(planes), key="ip_moon_plane")
    n = len(planes[0][1].codes)
    if n > PLANE_POINTS:
        st.caption(f"Each panel draws an even sample of {PLANE_POINTS:,} of the {n:,} codes; the table counts all.")
    for (title, _, ckpt, _), fit in zip(paths, row_fits):
        st.markdown(verdict(title, fit, ckpt.config.kind))
    st.dataframe(step_table(list(zip([p[0] for p in paths], row_fits)), planes), key="ip_moon_steps", hide_index=True)
    st.caption(
        "Frame: the moon fitted to it, its lit share, and whether any moon fits; covered by: how many data codes'"
        " noise covers the step, and the largest share of q(z) there by phase; nearest code: the AE's bare distance"
        " to its nearest code, in units of the usual spacing between codes. "
        f"A frame fits a moon when the data set's own renderer, fitted to it, leaves an RMS error ≤ {MOON_FIT_LIMIT}"
        " (99% of real test moons, craters and noise included, fit within 0.096). A step is covered when it lies"
        " inside the 95% region of a data code's q(z|x) in all dimensions (the plane shows two of them); the share"
        " is of the aggregate posterior q(z) = mean q(z|x_i) at the step, by the images' phase."
    )
