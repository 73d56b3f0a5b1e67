"""Reconstruct, VAE only: one image's ELBO taken apart and its posterior q(z|x) shown (Streamlit glue)."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from services.bound import MC_L, POSTERIOR_SAMPLES, REPEATS, BoundParts, McSpread, mc_spread, posterior_view
from services.scoring import SCORE_SAMPLES, Result
from ui.figures import MARGIN
from ui.state import dim_label, scoped
from vae.evaluate import ACTIVE_UNIT_NATS
from vae.images import to_pil

CONV_MC_L = (1, 10, 100)  # a conv decoder is slower: L = 1000 is not offered
DETAILED = 5  # images that get these panels (each draws up to REPEATS x L codes)


def mc_l_options(arch: str) -> tuple[int, ...]:
    return CONV_MC_L if arch == "conv" else MC_L


def mc_l_input(arch: str, key: str) -> int:
    """The select slider ``rc_mc_l``, scoped to the model ``key`` (its choices depend on the architecture):
    L, the samples of each Monte Carlo estimate of the ELBO."""
    options = mc_l_options(arch)
    return st.select_slider(
        "Monte Carlo samples L",
        options=list(options),
        value=100,
        key=scoped("rc_mc_l", key),
        help=f"Samples z^(l) = μ + σ·ε^(l) in each estimate of the ELBO; each is drawn {REPEATS} times (seeded) "
        "to show its spread, which shrinks like 1/√L.",
    )


def posterior_figure(
    dims: list[int], mu: np.ndarray, sigma: np.ndarray, kl: np.ndarray, height: int = 300
) -> go.Figure:
    """q(z|x) per latent dimension, in the order given (by KL): mu with ±sigma error bars (left axis) and
    each dimension's KL(q(z_j|x) ‖ N(0, 1)) as bars (right axis); the prior's ±1 band for reference."""
    names = [dim_label(d) for d in dims]
    fig = go.Figure()
    fig.add_bar(x=names, y=kl, name="KL (nats)", yaxis="y2", marker_color="rgba(127,143,166,0.45)")
    fig.add_scatter(
        x=names,
        y=mu,
        mode="markers",
        name="μ ± σ",
        marker={"color": "#e84118", "size": 8},
        error_y={"type": "data", "array": sigma, "visible": True, "thickness": 1.5},
    )
    fig.add_hrect(y0=-1, y1=1, fillcolor="#273c75", opacity=0.06, line_width=0, annotation_text="prior ±1")
    fig.update_layout(
        height=height,
        margin=MARGIN,
        title="q(z|x) per dimension, sorted by KL (largest first)",
        xaxis_title="latent dimension",
        yaxis={"title": "μ ± σ", "zeroline": True},
        yaxis2={"title": "KL (nats)", "overlaying": "y", "side": "right", "rangemode": "tozero", "showgrid": False},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def _digest(r: Result) -> str:
    return hashlib.sha256(r.x.numpy().tobytes()).hexdigest()


@st.cache_resource(show_spinner=False, max_entries=128)
def _spread(model_key: str, digest: str, L: int, _model, _x) -> McSpread:
    return mc_spread(_model, _x, L)


@st.cache_resource(show_spinner=False, max_entries=128)
def _posterior(model_key: str, digest: str, _model, _x):
    return posterior_view(_model, _x)


def _fmt(v: float) -> str:
    return f"{v:,.2f}"


def elbo_parts(r: Result, model, model_key: str, L: int, i: int) -> None:
    """The reconstruction and KL terms, IWAE_k and the gap, and both Monte Carlo estimates' spread."""
    s = r.score
    with st.spinner(f"Drawing {REPEATS} × {L} samples of z…"):
        spread = _spread(model_key, _digest(r), L, model, r.x)
    parts = BoundParts.of(spread, s.kl, s.iwae, s.iwae_k)
    n = L * spread.repeats
    st.markdown("**The ELBO taken apart**")
    st.latex(r"\mathrm{ELBO} = \mathbb E_{q(z\mid x)}[\log p(x\mid z)] - \mathrm{KL}\big(q(z\mid x)\,\|\,p(z)\big)")
    m = [*st.columns(2), *st.columns(2)]  # two by two: the labels fit a narrow window uncut
    m[0].metric("reconstruction term (nats)", _fmt(parts.recon), help=f"E_q[log p(x|z)] over all {n:,} samples.")
    m[1].metric("KL term (nats)", _fmt(parts.kl), help="KL(q(z|x) ‖ p(z)), in closed form.")
    m[2].metric(f"IWAE k={parts.iwae_k} (nats)", _fmt(parts.iwae))
    m[3].metric(
        "IWAE − ELBO (nats)",
        _fmt(parts.gap),
        help="An estimate of KL(q(z|x) ‖ p(z|x)): the slack Jensen's inequality leaves. It is ≥ 0 in "
        "expectation (and grows towards the full gap as k grows); a single estimate can be negative.",
    )
    st.caption(
        f"ELBO (L = {L} × {spread.repeats} repeats = {n:,} samples) = {_fmt(parts.recon)} − {_fmt(parts.kl)} = "
        f"{_fmt(parts.elbo)} nats; the gap IWAE_k − ELBO = {_fmt(parts.gap)} nats estimates KL(q(z|x) ‖ p(z|x)), "
        f"how far q(z|x) is from the true posterior. It differs from the card's ELBO (L = {SCORE_SAMPLES}) by "
        "Monte Carlo noise only: both estimate the same expectation, this one with more samples of z."
    )
    rows = []
    for name, v in (
        ("(1/L) Σ [log p(x, z⁽ˡ⁾) − log q(z⁽ˡ⁾|x)]", spread.mc),
        ("(1/L) Σ log p(x|z⁽ˡ⁾) − KL (closed form)", spread.closed),
    ):
        mean, std = McSpread.stats(v)
        rows.append({"estimate": name, "mean": mean, "std": std, "std × √L": std * math.sqrt(L)})
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        column_config={
            "mean": st.column_config.NumberColumn(f"mean of {spread.repeats} (nats)", format="%.3f"),
            "std": st.column_config.NumberColumn("std over repeats", format="%.3f"),
            "std × √L": st.column_config.NumberColumn("std × √L", format="%.2f", help="Constant in L: 1/√L."),
        },
        key=f"rc_mc_table_{i}",
    )
    st.caption(
        f"Both estimate the same ELBO with L = {L} (same draws of z, {spread.repeats} seeded repeats). "
        "The closed-form KL takes the KL's sampling noise away, which usually lowers the spread; when "
        "q(z|x) is close to p(z|x), log p(x|z) and log p(z) − log q(z|x) partly cancel within a sample, "
        "and the full Monte Carlo estimate can be the steadier one: compare the two std columns."
    )


def posterior(r: Result, model, model_key: str, i: int) -> None:
    """μ ± σ and KL per dimension (sorted by KL), and decodings of z ~ q(z|x) beside the decoded mean."""
    view = _posterior(model_key, _digest(r), model, r.x)
    st.markdown(r"**The code is a distribution:** $q(z\mid x) = \mathcal N(\mu, \operatorname{diag}\sigma^2)$")
    fig = posterior_figure(view.order.tolist(), view.mu, view.sigma, view.kl)
    st.plotly_chart(fig, width="stretch", key=f"rc_posterior_{i}")
    st.caption(active_units_caption(int((view.kl > ACTIVE_UNIT_NATS).sum()), len(view.kl)))
    side = r.x.shape[-1]
    scale = max(1, round(64 / side))
    cols = st.columns(POSTERIOR_SAMPLES + 1)
    cols[0].image(to_pil(view.mean_image, scale=scale), caption="decoded μ", width=scale * side)
    for j, (col, img) in enumerate(zip(cols[1:], view.samples)):
        col.image(to_pil(img, scale=scale), caption=f"z ~ q #{j + 1}", width=scale * side)
    st.caption(
        f"The decoder's mean at z = μ, then at {POSTERIOR_SAMPLES} codes z = μ + σ·ε drawn from q(z|x) (seeded): "
        "the noise around the code that the KL term keeps from shrinking to zero."
    )


def active_units_caption(active: int, total: int) -> str:
    """How many of the ``total`` dimensions carry more than ACTIVE_UNIT_NATS of KL, said right for all and none."""
    more = f"more than {ACTIVE_UNIT_NATS:g} nats of KL"
    if active == total:
        return f"All {total} dimensions carry {more}: none stays at the prior."
    rest = "the other stays" if total - active == 1 else "the others stay"
    if active == 0:
        return f"None of the {total} dimensions carries {more}: all stay at the prior (μ ≈ 0, σ ≈ 1)."
    return (
        f"{active} of {total} dimensions carry {more}; {rest} at the prior (μ ≈ 0, σ ≈ 1), "
        f"and the decoder ignores {'it' if total - active == 1 else 'them'}."
    )


def show(r: Result, model, model_key: str, L: int, i: int) -> None:
    """The VAE-only panels of one scored image."""
    if model.deterministic or r.score is None or r.score.iwae is None or not np.isfinite(r.score.iwae):
        return
    if i >= DETAILED:
        st.caption(f"The ELBO's parts and the posterior are shown for the first {DETAILED} images only.")
        return
    elbo_parts(r, model, model_key, L, i)
    posterior(r, model, model_key, i)
