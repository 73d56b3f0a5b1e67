"""The Compare page's figures, Streamlit glue and text: models side by side on the same inputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from services.bound import ModelSpread
from services.compare import (
    MAX_MODELS,
    Candidate,
    CompareError,
    Measured,
    beta_sweep,
    check_comparable,
    measure_kept,
    spread_kept,
)
from services.explore import strip
from services.registry import Entry, list_checkpoints
from ui.common import Active, _open
from ui.figures import MARGIN, palette
from ui.state import scoped
from vae.checkpoint import CheckpointError, read_metadata


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


def _alike(a: Pick, b: Pick) -> bool:
    return (a.candidate.dataset, a.candidate.image_shape) == (b.candidate.dataset, b.candidate.image_shape)


def default_labels(options: dict[str, Pick], active_name: str) -> list[str]:
    """The committed β sweep of the active model's data set and shape (with the active model, if it is not
    in it); else the active model and up to one other of its data set and shape. Without an active model
    among the options: the committed sweep, if any."""
    mine = next((p for p in options.values() if p.entry.name == active_name), None)
    committed = [p for p in options.values() if p.entry.source == "committed" and (mine is None or _alike(p, mine))]
    by_name = {p.candidate.name: p.label for p in committed}
    sweep = [by_name[n] for n in beta_sweep([p.candidate for p in committed])]
    if mine is None:
        return sweep
    if sweep:
        return sweep if mine.label in sweep else [*sweep[: MAX_MODELS - 1], mine.label]
    alike = [label for label, p in options.items() if p is not mine and _alike(p, mine)]
    return [mine.label, *alike[:1]]


def choose(active: Active) -> list[Active] | None:
    """The models picked (two to four, loaded), or None with one message why not.
    The picker is scoped to the active model: another model starts from its own default."""
    options = picks()
    chosen = st.multiselect(
        f"Models (two to {MAX_MODELS}, of one data set and image shape; by default the committed β sweep of this "
        "model's data set, else this model and one alike)",
        list(options),
        default=default_labels(options, active.name),
        max_selections=MAX_MODELS,
        key=scoped("cmp_models", active),
    )
    if len(chosen) < 2:
        st.info("Pick two to four models above to compare them on the same inputs.")
        return None
    try:
        check_comparable([options[c].candidate for c in chosen])
    except CompareError as e:
        st.error(str(e))
        return None
    return [active if options[c].entry.name == active.name else _open(options[c].entry) for c in chosen]


def label_of(m: Active | Measured) -> str:
    """The one name of a model on the page: 'name · β = 0.5', or 'name · AE'."""
    if isinstance(m, Measured):
        return model_label(m.name, m.kind, m.beta)
    return model_label(m.name, m.config.kind, m.config.beta)


@st.cache_resource(show_spinner=False, max_entries=32)
def measured(key: str, name: str, _model, _x: torch.Tensor, iwae_k: int, seed: int) -> Measured:
    """``services.compare.measure_kept`` (on disk), kept in memory too."""
    return measure_kept(key, name, _model, _x, iwae_k=iwae_k, seed=seed)


def measure_all(models: Sequence[Active], x: torch.Tensor, iwae_k: int) -> list[Measured]:
    """Every model's measures on x, with a spinner naming the model being measured."""
    out = []
    for i, m in enumerate(models, start=1):
        what = f"Measuring {m.name} ({i} of {len(models)}): rate, distortion, ELBO and IWAE with k = {iwae_k}…"
        with st.spinner(what):
            out.append(measured(f"{m.key}|{len(x)}", m.name, m.model, x, iwae_k, 0))
    return out


def mc_section(active: Active, models: Sequence[Active], x: torch.Tensor) -> None:
    """Both L-sample estimates of the ELBO per VAE on images x, and how much one draw of each varies."""
    c1, _ = st.columns([1, 2])  # the slider's end stays clear of the table's toolbar at the right
    L = c1.select_slider("Samples L per estimate", [1, 10, 100], 10, key=scoped("cmp_mc_L", active))
    vaes = [m for m in models if m.config.kind == "vae"]
    if not vaes:
        st.caption("None of these models is a VAE: an AE has no q(z|x) to draw from.")
        return
    rows = []
    for m in vaes:
        with st.spinner(f"Drawing {m.name}'s Monte Carlo estimates with L = {L}…"):
            rows.append((label_of(m), spread(f"{m.key}|{len(x)}", m.model, x, L)))
    st.dataframe(spread_table(rows), hide_index=True, key=scoped("cmp_mc", active, L))
    st.caption(
        r"Per image, $\frac1L \sum_l [\log p(x, z_l) - \log q(z_l\mid x)]$ and "
        r"$\frac1L \sum_l \log p(x\mid z_l) - \mathrm{KL}(q(z\mid x) \,\|\, \mathcal N(0, I))$, "
        f"each drawn {rows[0][1].repeats} times with $z_l = \\mu + \\sigma \\odot \\varepsilon_l$; means over the "
        f"first {len(x)} of the images above, and the standard deviation of one estimate over the repeats, averaged "
        r"over them. The gap IWAE − ELBO in the table above estimates $\mathrm{KL}(q(z\mid x) \,\|\, p(z\mid x))$."
    )


@st.cache_resource(show_spinner=False, max_entries=64)
def spread(key: str, _model, _x: torch.Tensor, L: int) -> ModelSpread:
    """``services.compare.spread_kept`` (on disk), kept in memory too."""
    return spread_kept(key, _model, _x, L)


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


# Axis titles as the panels write them: plotly draws no LaTeX here, so subscripts are HTML and symbols Unicode.
RATE_TITLE = "rate R = KL(q(z | x) ‖ 𝒩(0, I)), nats"
DISTORTION_TITLE = "distortion D = −𝔼<sub>q(z | x)</sub>[log p(x | z)], nats"


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
    # One trace a model, named in full on the plot and in the legend: two β = 1 models stay two names.
    for (name, beta, r, d), colour in zip(points, palette(max(1, len(points)))):
        label = model_label(name, "vae", beta)
        fig.add_trace(
            go.Scatter(
                x=[r],
                y=[d],
                mode="markers+text",
                text=[label],
                # Labels of the right half go left of their point: a long name must not run off the figure.
                textposition="top left" if r > (lo + hi) / 2 else "top right",
                customdata=[[label, -(r + d)]],
                hovertemplate="%{customdata[0]}<br>rate %{x:.2f} nats<br>distortion %{y:.2f} nats"
                "<br>ELBO %{customdata[1]:.2f}<extra></extra>",
                marker={"size": 12, "color": colour},
                name=label,
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
        xaxis={"title": RATE_TITLE, "range": [lo, hi]},
        yaxis={"title": DISTORTION_TITLE, "range": [min(ys) - pad, max(ys) + pad]},
        legend={"orientation": "h", "y": -0.2},
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
    decades = np.arange(np.log10(floor), np.ceil(np.log10(top) + 0.3) + 1)
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
            # Round ticks, one a decade: plotly's own on a short log axis read like 0.24 / 0.873 / 1.505.
            "tickvals": [float(10**e) for e in decades],
            "ticktext": [f"{10**e:g}" for e in decades],
        },
        legend={"orientation": "h", "y": -0.25},
    )
    return fig
