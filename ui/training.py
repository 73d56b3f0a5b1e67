"""Streamlit glue of the Train page: a run's curves, previews and final metrics, each named for what the
model has (an AE has no KL, no ELBO and no prior)."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from services.jobs import TrainingJob
from ui.common import show
from ui.texts import likelihood_note
from vae.images import tile


def curves(job: TrainingJob) -> go.Figure:
    """A VAE's loss and its two terms per step and its test −ELBO per epoch; an AE's loss, which is its
    reconstruction term alone, and its test −log p(x|ẑ)."""
    is_ae = job.model_config.kind == "ae"
    fig = go.Figure()
    steps = job.steps
    if steps:
        x = [s["step"] for s in steps]
        if is_ae:
            fig.add_trace(go.Scatter(x=x, y=[s["loss"] for s in steps], name="loss = −log p(x|ẑ)"))
        else:
            fig.add_trace(go.Scatter(x=x, y=[s["loss"] for s in steps], name="loss = −recon + β·KL"))
            fig.add_trace(go.Scatter(x=x, y=[-s["recon"] for s in steps], name="−E_q[log p(x|z)]"))
            fig.add_trace(go.Scatter(x=x, y=[s["kl"] for s in steps], name="KL(q(z|x) ‖ N(0, I))"))
    if job.epochs:
        n = job.latest.steps_per_epoch if job.latest else 1
        fig.add_trace(
            go.Scatter(
                x=[e["epoch"] * n for e in job.epochs],
                y=[-e["test_elbo"] for e in job.epochs],  # an AE's "ELBO" is its reconstruction term (KL 0)
                name="test −log p(x|ẑ)" if is_ae else "test −ELBO",
                mode="lines+markers",
            )
        )
    fig.update_layout(
        height=320,
        margin=dict(l=10, r=10, t=30, b=10),
        xaxis_title="step",
        yaxis_title="nats per image (running mean over the epoch)",
    )
    return fig


def previews(job: TrainingJob) -> None:
    """Test images, their reconstructions and decoded N(0, I) codes (for a VAE: samples from its prior)."""
    pv = job.previews
    c1, c2 = st.columns(2)
    with c1:
        show(tile(pv["originals"].cpu(), nrow=8, pad_value=0.3), "test images", scale=2)
        show(tile(pv["reconstructions"], nrow=8, pad_value=0.3), "their reconstructions", scale=2)
    with c2:
        if job.model_config.kind == "ae":
            caption = "decoded N(0, I) codes: an AE has no prior and was never trained to decode these"
        else:
            caption = "samples from the prior"
        show(tile(pv["samples"], nrow=8, pad_value=0.3), caption, scale=2)


def final_metrics(job: TrainingJob) -> None:
    """The finished run's test metrics, named for the kind of model, with the likelihood's caveat."""
    m, cfg = job.metrics, job.model_config
    if m.get("elbo") is None:
        return
    if cfg.kind == "ae":
        text = f"Test log p(x|ẑ) {m.get('recon', m['elbo']):.2f} nats/image (reconstruction)"
    else:
        text = f"Test ELBO {m['elbo']:.2f} nats/image" + (f", IWAE {m['iwae']:.2f}" if m.get("iwae") else "")
    st.success(text + ". The model is in the picker now.")
    if note := likelihood_note(cfg.likelihood, cfg.binarize):
        st.caption(f"Note: {note}")
