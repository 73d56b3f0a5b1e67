"""The Compare page's figures, Streamlit glue and text: models side by side on the same inputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from services.bound import ModelSpread, model_spread
from services.compare import Candidate, Measured, beta_sweep, measure
from services.explore import strip
from services.registry import Entry, list_checkpoints
from ui.figures import MARGIN, palette
from vae.checkpoint import Checkpoint, CheckpointError, load_checkpoint, read_metadata
from vae.objectives import model_input


@dataclass(frozen=True)
class Pick:
    """A checkpoint the page can offer: its picker label, file and what its metadata says."""

    label: str
    entry: Entry
    candidate: Candidate


@st.cache_data(show_spinner=False, max_entries=256)
def _candidate(path: str, mtime: float, name: str) -> Candidate | None:
    try:
        return Candidate.from_metadata(name, read_metadata(path))
    except CheckpointError:
        return None


def picks() -> dict[str, Pick]:
    """Every committed and trained checkpoint whose metadata reads, by picker label (registry order)."""
    out = {}
    for e in list_checkpoints():
        c = _candidate(str(e.path), e.path.stat().st_mtime, e.name)
        if c is not None:
            out[e.label] = Pick(e.label, e, c)
    return out


def default_labels(options: dict[str, Pick], active_name: str) -> list[str]:
    """The committed β sweep when there is one; else the active model and up to one other of its data set and shape."""
    committed = [p for p in options.values() if p.entry.source == "committed"]
    by_name = {p.candidate.name: p.label for p in committed}
    sweep = beta_sweep([p.candidate for p in committed])
    if sweep:
        return [by_name[n] for n in sweep]
    mine = next((p for p in options.values() if p.entry.name == active_name), None)
    if mine is None:
        return []
    alike = [
        label
        for label, p in options.items()
        if p is not mine
        and (p.candidate.dataset, p.candidate.image_shape) == (mine.candidate.dataset, mine.candidate.image_shape)
    ]
    return [mine.label, *alike[:1]]


@st.cache_resource(show_spinner="Loading checkpoint…", max_entries=16)
def load(path: str, mtime: float) -> Checkpoint:
    """A checkpoint, loaded once per file version."""
    torch.set_grad_enabled(False)
    return load_checkpoint(path)


@st.cache_resource(show_spinner="Measuring rate, distortion and the bounds…", max_entries=32)
def measured(key: str, name: str, _model, _x: torch.Tensor, iwae_k: int, seed: int) -> Measured:
    """``services.compare.measure``, cached under ``key`` (checkpoint and inputs) and the settings."""
    return measure(name, _model, _x, iwae_k=iwae_k, seed=seed)


@st.cache_resource(show_spinner="Drawing the Monte Carlo estimates…", max_entries=64)
def spread(key: str, _model, _x: torch.Tensor, L: int) -> ModelSpread:
    """``services.bound.model_spread`` of model inputs x, cached under ``key`` (checkpoint and inputs) and L."""
    return model_spread(_model, model_input(_x, _model.config), L)


def spread_table(rows: Sequence[tuple[str, ModelSpread]]) -> list[dict[str, str]]:
    """One row a VAE: both L-sample estimates of the ELBO and how much one draw of each varies."""
    return [
        {
            "model": label,
            f"MC estimate, L={s.L}": f"{s.mc:.2f}",
            "MC spread (sd)": f"{s.mc_sd:.2f}",
            "closed-form-KL estimate": f"{s.closed:.2f}",
            "closed-form spread (sd)": f"{s.closed_sd:.2f}",
        }
        for label, s in rows
    ]


def model_label(name: str, kind: str, beta: float) -> str:
    """'name · β = 0.5' for a VAE, 'name · AE' for an AE (it has no β)."""
    return f"{name} · AE" if kind == "ae" else f"{name} · β = {beta:g}"


def image_rows(rows: Sequence[tuple[str, torch.Tensor]], scale: int = 3) -> None:
    """One labelled strip per (label, images (N, C, H, W)), the images of every row in the same columns."""
    for label, images in rows:
        c1, c2 = st.columns([1, 4], vertical_alignment="center")
        c1.markdown(f"**{label}**")
        c2.image(strip(images, scale=scale), output_format="PNG")


def table(measured: Sequence[Measured], iwae_k: int) -> list[dict[str, str]]:
    """The numbers behind the plot, one row a model; an AE's missing terms read '—'."""

    def f(v: float | None) -> str:
        return "—" if v is None else f"{v:.2f}"

    return [
        {
            "model": m.name,
            "β": "— (AE)" if m.kind == "ae" else f"{m.beta:g}",
            "rate KL": f(m.rate),
            "distortion −log p(x|z)": f(m.distortion),
            "ELBO": f(m.elbo),
            f"IWAE (k={iwae_k})": f(m.iwae),
            "gap IWAE − ELBO": "—" if m.iwae is None or m.elbo is None else f"{m.iwae - m.elbo:.2f}",
            "active units": "—" if m.active_units is None else f"{m.active_units} / {m.latent_dim}",
        }
        for m in measured
    ]


def rate_distortion_figure(
    points: Sequence[tuple[str, float, float, float]], ae_lines: Sequence[tuple[str, float]] = (), height: int = 420
) -> go.Figure:
    """Rate (x) against distortion (y), one labelled point per (name, β, rate, distortion); a dotted
    line of equal ELBO (D + R = −ELBO) through each point; an AE, which has no rate, as a dashed
    horizontal line at its distortion."""
    fig = go.Figure()
    rates = [p[2] for p in points] or [0.0]
    lo, hi = min(0.0, min(rates)), max(rates) * 1.15 + 1.0
    for _, _, r, d in points:  # D + R = const has slope −1
        fig.add_trace(
            go.Scatter(
                x=[lo, hi],
                y=[d + r - lo, d + r - hi],
                mode="lines",
                line={"dash": "dot", "width": 1, "color": "#b0b0b0"},
                hoverinfo="skip",
                showlegend=False,
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[p[2] for p in points],
            y=[p[3] for p in points],
            mode="markers+text",
            text=[f"β = {p[1]:g}" for p in points],
            textposition="top right",
            customdata=[[p[0], -(p[2] + p[3])] for p in points],
            hovertemplate="%{customdata[0]}<br>rate %{x:.2f} nats<br>distortion %{y:.2f} nats"
            "<br>ELBO %{customdata[1]:.2f}<extra></extra>",
            marker={"size": 12, "color": palette(max(1, len(points)))},
            name="VAEs",
            showlegend=False,
        )
    )
    for name, d in ae_lines:
        fig.add_hline(
            y=d,
            line_dash="dash",
            line_color="#e84118",
            annotation_text=f"{name} (AE: a point code, no rate)",
            annotation_position="top left",
        )
    ys = [p[3] for p in points] + [d for _, d in ae_lines] or [0.0]
    pad = max(2.0, 0.15 * (max(ys) - min(ys)))
    fig.update_layout(
        height=height,
        margin={**MARGIN, "t": 40},
        title="One point a model; dotted lines: equal ELBO (D + R = −ELBO)",
        xaxis={"title": "rate R = KL(q(z|x) ‖ N(0, I)), nats", "range": [lo, hi]},
        yaxis={"title": "distortion D = −E_q[log p(x|z)], nats", "range": [min(ys) - pad, max(ys) + pad]},
    )
    return fig


def kl_bars_figure(series: Sequence[tuple[str, np.ndarray]], threshold: float, height: int = 340) -> go.Figure:
    """Grouped bars of each model's mean KL per dimension (D,), sorted largest first, on a log axis, with
    the active-unit threshold as a dashed line. Values under 1e-4 nats are drawn at 1e-4 (hover tells the truth)."""
    floor = 1e-4
    fig = go.Figure()
    colours = palette(max(1, len(series)))
    top = floor
    for (name, kl), colour in zip(series, colours):
        kl = np.asarray(kl, dtype=np.float64)
        top = max(top, float(kl.max(initial=floor)))
        fig.add_trace(
            go.Bar(
                x=[str(i + 1) for i in range(len(kl))],
                y=np.maximum(kl, floor),
                customdata=kl,
                name=name,
                marker_color=colour,
                hovertemplate=f"{name}<br>rank %{{x}}: %{{customdata:.4f}} nats<extra></extra>",
            )
        )
    fig.add_hline(y=threshold, line_dash="dash", line_color="#888")
    # On a log axis an hline's own annotation lands at 10**threshold (plotly reads y as the exponent).
    fig.add_annotation(
        x=1,
        xref="paper",
        y=float(np.log10(threshold)),
        text=f"active above {threshold:g} nats",
        showarrow=False,
        xanchor="right",
        yanchor="bottom",
    )
    fig.update_layout(
        height=height,
        margin={**MARGIN, "t": 40},
        barmode="group",
        title="Mean KL per latent dimension, largest first",
        xaxis_title="dimension, by rank",
        yaxis={
            "title": "KL (nats, log scale)",
            "type": "log",
            "range": [np.log10(floor), np.log10(top) + 0.3],
            "exponentformat": "none",
        },
        legend={"orientation": "h", "y": -0.25},
    )
    return fig
