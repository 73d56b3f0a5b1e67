"""The Home page's model card: data set, kind, architecture, test metrics and the loss curve.

Streamlit and the checkpoint's metadata only (no torch), so that the card shows while torch is still
importing; the ONNX download imports the exporter when it is drawn.
"""

from __future__ import annotations

import math

import streamlit as st

from ui.texts import likelihood_note

CHART_HEIGHT = 340  # px, the loss chart with its legend and axes: a plot tall enough for five or six y ticks
METRIC_PX = 150  # a metric's narrowest cell: the card has fewer columns on a narrow window, never cut values


def _metric(v: float | None) -> str:
    return f"{v:.2f}" if v is not None else "—"


def iwae_coverage(m: dict) -> tuple[str | None, str]:
    """(the IWAE's tooltip: how many test images it covers, a note when that is only the first part of them)."""
    covered = m.get("iwae_n") or m.get("n")  # files written before iwae_n existed scored all n images
    on = f"over {covered:,} test images" if m.get("iwae") is not None and covered else None
    if on and m.get("n") and covered < m["n"]:
        return on, f"IWAE over the first {covered:,} of {m['n']:,} test images"
    return on, ""


def vae_metrics(box, cfg: dict, m: dict) -> None:
    """β, the likelihood, the test ELBO and IWAE, and the active units, one cell each of ``box`` (a grid):
    what only a VAE has."""
    box.metric("β", f"{cfg.get('beta', 1):g}")
    box.metric("Likelihood", str(cfg.get("likelihood")), help=likelihood_help(cfg))
    box.metric("Test ELBO (nats)", _metric(m.get("elbo")))
    on, part = iwae_coverage(m)
    box.metric(f"Test IWAE k={m.get('iwae_k', 0)}", _metric(m.get("iwae")), help=f"{part}." if part else on)
    au = m.get("active_units")
    box.metric("Active units", f"{au} / {cfg.get('latent_dim')}" if au is not None else "—")


def ae_metrics(box, cfg: dict, m: dict) -> None:
    """An AE's only score: the reconstruction log-likelihood of its code, log p(x|ẑ) (and its likelihood)."""
    box.metric("Code", "deterministic", help="An AE encodes x to one point ẑ: no q(z|x), no prior, no KL.")
    box.metric("Likelihood", str(cfg.get("likelihood")), help=likelihood_help(cfg))
    recon = m.get("recon", m.get("elbo"))  # an AE's "ELBO" is its reconstruction term (KL 0)
    box.metric("Test log p(x|ẑ) (nats)", _metric(recon), help="Reconstruction log-likelihood, per test image.")


def likelihood_help(cfg: dict) -> str:
    """The likelihood metric's tooltip: the value stays one short word (a metric cuts long values)."""
    if cfg.get("binarize"):
        return f"p(x|z) is {cfg.get('likelihood')}; the training and test images were binarized (0 or 1 pixels)."
    return f"p(x|z) is {cfg.get('likelihood')}, on the images as they are."


def loss_rows(hist: list[dict], is_ae: bool) -> list[dict]:
    """The loss curve's long-form rows {epoch, series, nats}: finite values only (a NaN or an infinite loss
    would give Vega an infinite extent and flatten the chart)."""
    # An AE's test "ELBO" is its reconstruction term: its curve is named for what it is.
    test = "test −log p(x|ẑ)" if is_ae else "test −ELBO"
    rows = []
    for i, e in enumerate(hist, start=1):
        elbo = e.get("test_elbo")
        for series, v in (("train loss", e.get("loss")), (test, -elbo if isinstance(elbo, (int, float)) else None)):
            if isinstance(v, (int, float)) and math.isfinite(v):
                rows.append({"epoch": int(e.get("epoch", i)), "series": series, "nats": float(v)})
    return rows


def loss_spec(rows: list[dict]) -> dict:
    """Vega-Lite for the loss curve: the y axis spans the losses (from 0 the curves were flat lines). Both
    domains are given: Streamlit draws the chart once before its data arrive, and a domain taken from no data
    is an "infinite extent" (a warning per field in the console)."""
    epochs, nats = [r["epoch"] for r in rows], [r["nats"] for r in rows]
    lo, hi = min(nats), max(nats)
    pad = 0.05 * (hi - lo) or 1.0
    return {
        "data": {"values": rows},
        "mark": {"type": "line", "point": len(set(epochs)) == 1},  # one epoch: a point, not an invisible line
        "encoding": {
            "x": {
                "field": "epoch",
                "type": "quantitative",
                "title": "epoch",
                "axis": {"tickMinStep": 1},
                "scale": {"domain": [min(epochs), max(max(epochs), min(epochs) + 1)]},
            },
            "y": {
                "field": "nats",
                "type": "quantitative",
                "title": "nats/image",
                "scale": {"domain": [lo - pad, hi + pad], "nice": True, "zero": False},
            },
            "color": {
                "field": "series",
                "type": "nominal",
                "title": None,
                "legend": {"orient": "top"},
                "scale": {"range": ["#f58518", "#4c9be8"]},  # two hues, not two blues
            },
        },
    }


def loss_chart(hist: list[dict], is_ae: bool) -> None:
    """Train loss and test −ELBO (an AE: −log p(x|ẑ)) per epoch, when there are any finite values."""
    rows = loss_rows(hist, is_ae)
    if rows:
        st.vega_lite_chart(loss_spec(rows), width="stretch", height=CHART_HEIGHT)


def model_card(name: str, cfg: dict, dataset: dict, history: dict, m: dict) -> None:
    """Data set, kind, architecture, latent size, likelihood, epochs, test metrics and loss curve: a VAE's β,
    ELBO, IWAE and active units; an AE's reconstruction log-likelihood, the only thing it has."""
    hist = history.get("epochs", [])
    hidden, latent = cfg.get("hidden", []), cfg.get("latent_dim")
    is_ae = cfg.get("kind") == "ae"
    st.subheader(f"Model card · {name}")
    box = st.grid(5, min_column_width=METRIC_PX)
    box.metric("Data set", dataset.get("name", "?"))
    box.metric("Kind", str(cfg.get("kind", "?")).upper())
    box.metric("Architecture", str(cfg.get("arch", "?")).upper(), help=f"hidden sizes {', '.join(map(str, hidden))}")
    box.metric("Latent size", latent)
    box.metric("Epochs", len(hist))
    box = st.grid(5, min_column_width=METRIC_PX)
    (ae_metrics if is_ae else vae_metrics)(box, cfg, m)
    binarized = ", binarized" if cfg.get("binarize") else ""
    part = "" if is_ae else iwae_coverage(m)[1]
    st.caption(
        f"{cfg.get('arch')} encoder {' → '.join(map(str, hidden))} → {latent}-d code; "
        f"images {'×'.join(map(str, cfg.get('image_shape', [])))}{binarized}" + (f"; {part}" if part else "")
    )
    if note := likelihood_note(cfg.get("likelihood"), cfg.get("binarize")):
        st.caption(f"Note: {note}")
    if hist:
        loss_chart(hist, is_ae)


def download_decoder(name: str, model) -> None:
    """The model's decoder as an ONNX file, exported only when the button is clicked."""
    from vae.export import decoder_onnx  # torch: imported after the card has shown

    row = st.container(horizontal=True, vertical_alignment="center")  # the button never narrower than its label
    row.download_button(
        "Download decoder (ONNX)",
        lambda: decoder_onnx(model),
        f"{name.removesuffix('.safetensors')}-decoder.onnx",
        "application/octet-stream",
        key="home_download_onnx",
    )
    c, h, w = model.config.image_shape
    row.caption(
        f'Run the decoder anywhere ONNX runs: it takes "z", float32 (N, {model.latent_dim}), and gives "x", '
        f"float32 (N, {c}, {h}, {w}): the decoder's mean, pixels in [0, 1]."
    )


def prior_samples(model) -> None:
    """64 decodings of z ~ N(0, t² I), their temperature t and Resample (a seed counter in session state)."""
    import torch

    from ui.common import show
    from vae.images import tile

    is_ae = model.deterministic
    if is_ae:
        st.subheader("Decodings of N(0, I) codes")
        st.caption(
            "An AE has no prior: these are what its decoder makes of codes drawn from N(0, t² I), which it was "
            "never trained to decode (its codes lie wherever training put them). A VAE's samples come from the "
            "prior its KL term fitted the codes to."
        )
    else:
        st.subheader("Samples from the prior")
    c1, c2 = st.columns([3, 1])
    temperature = c1.slider(
        "Temperature (z ~ N(0, t² I))",
        0.0,
        2.0,
        1.0,
        0.05,
        key="home_temperature",
        help="Scales the codes' standard deviation."
        + ("" if is_ae else " Below 1 gives typical images, above 1 unusual ones."),
    )
    if c2.button("Resample", key="home_resample"):
        st.session_state["home_seed"] = st.session_state.get("home_seed", 0) + 1
    gen = torch.Generator().manual_seed(st.session_state.get("home_seed", 0))
    with torch.no_grad():
        samples = model.sample(64, temperature=temperature, generator=gen).cpu()
    show(tile(samples, nrow=16, padding=2, pad_value=0.3), scale=3)
