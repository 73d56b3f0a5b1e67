"""Streamlit glue of the Reconstruct page: cached scoring, the inputs, the table, chart and result panels."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import streamlit as st

from services.explore import png_bytes
from services.scoring import (
    REFERENCE_LIMIT,
    TYPICAL_PERCENTILE,
    Reference,
    Request,
    Result,
    process_upload,
    score_all,
    score_test_image,
    summary_rows,
    typicality_reference,
)
from ui.figures import score_histogram
from ui.pictures import colorbar_image, drawing, heatmap_image, thumbnail
from vae.data import Dataset
from vae.images import to_pil

try:  # optional: a drawing canvas, if streamlit-drawable-canvas is installed
    from streamlit_drawable_canvas import st_canvas
except Exception:  # not installed, or incompatible with this Streamlit
    st_canvas = None

EXAMPLES = 200  # test images offered in the picker
THUMB = 112  # preprocessing steps are shown in THUMB x THUMB boxes
MARKED = 20  # images marked on the histogram


@st.cache_resource(
    show_spinner=f"Scoring up to {REFERENCE_LIMIT:,} test images for the typicality test…", max_entries=16
)
def _reference(model_key: str, _model, _x) -> Reference:
    return typicality_reference(_model, _x, limit=REFERENCE_LIMIT)


@st.cache_resource(show_spinner=False, max_entries=256)
def _score_upload(model_key, digest, name, style, dark, k, has_ref, _data, _model, _ref) -> Result:
    return process_upload(name, _data, _model, style=style, dark_background=dark, reference=_ref, iwae_k=k)


@st.cache_resource(show_spinner=False, max_entries=64)
def _score_example(model_key, index, name, k, has_ref, _x, _model, _ref) -> Result:
    return score_test_image(name, _x, _model, _ref, iwae_k=k)


def reference(model_key: str, model, data: Dataset | None) -> Reference | None:
    """The test images' scores for the typicality test: once per checkpoint; None (with a warning) without them."""
    if data is None:
        return None
    try:
        return _reference(model_key, model, data.test_x)
    except Exception as e:  # noqa: BLE001 - the page still scores, only without percentiles
        st.warning(f"The test-set reference could not be computed ({e}); the typicality test is skipped.")
        return None


def scorer(model_key: str, model, data: Dataset | None, upload_style: tuple[str, bool], k: int, ref) -> Callable:
    """``score(request) -> Result`` for :func:`services.scoring.score_all`, cached per model and input."""
    style, dark = upload_style
    has_ref = ref is not None

    def score(req: Request) -> Result:
        if req.index is not None:
            return _score_example(model_key, req.index, req.name, k, has_ref, data.test_x[req.index], model, ref)
        digest = hashlib.sha256(req.data).hexdigest()
        return _score_upload(model_key, digest, req.name, style, dark, k, has_ref, req.data, model, ref)

    return score


def score_requests(requests: list[Request], score: Callable[[Request], Result], k: int) -> list[Result]:
    """Score every request, with a progress bar when it takes a while; errors are shown, never raised."""
    bar = st.progress(0.0, text="Scoring…") if len(requests) > 1 or k > 1000 else None

    def progress(i: int, n: int, name: str) -> None:
        if bar is not None:
            bar.progress(i / n, text=f"Scoring {name} ({i + 1} of {n})…")

    with st.spinner("Reconstructing and scoring…"):
        results = score_all(requests, score, progress)
    if bar is not None:
        bar.empty()
    for r in results:
        if not r.ok:
            st.error(r.error)
    return results


def example_label(data: Dataset, i: int | None) -> str:
    return "(none)" if i is None else f"test image #{i} · {data.label_names[int(data.test_y[i])]}"


def example_input(data: Dataset | None) -> Request | None:
    """The test-image picker ``rc_example``: the picked image as a request."""
    if data is None:
        st.caption("No test set is available for this model.")
        return None
    example = st.selectbox(
        "Test image",
        [None, *range(min(EXAMPLES, len(data.test_x)))],
        format_func=lambda i: example_label(data, i),
        key="rc_example",
        help="No files at hand? Score one of the model's own test images.",
    )
    return None if example is None else Request(example_label(data, example), index=example)


def drawing_input(dark: bool) -> Request | None:
    """The drawing canvas ``rc_canvas`` (if its package is installed): a drawing as a PNG request."""
    if st_canvas is None:
        st.caption(
            "Drawing needs the `streamlit-drawable-canvas` package from requirements.txt "
            "(`pip install streamlit-drawable-canvas`). Meanwhile, pick a test image or upload a file."
        )
        return None
    bg, ink = ("#000000", "#FFFFFF") if dark else ("#FFFFFF", "#000000")
    st.caption(f"Draw with the mouse, {'light on dark' if dark else 'dark on light'} like the model's images.")
    try:
        canvas = st_canvas(
            stroke_width=18,
            stroke_color=ink,
            background_color=bg,
            height=224,
            width=224,
            drawing_mode="freedraw",
            return_image_data=True,
            key="rc_canvas",
        )
        arr = canvas.image_data if canvas is not None else None
    except Exception as e:  # noqa: BLE001 - a broken optional widget must not break the page
        arr = None
        st.caption(f"The drawing canvas is not working here ({e.__class__.__name__}).")
    img = drawing(arr, bg)
    return None if img is None else Request("drawing", data=png_bytes(img))


def fmt(v: float | None, digits: int = 1) -> str:
    return "—" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def summary_table(results: list[Result], deterministic: bool, has_ref: bool, k: int) -> None:
    st.subheader("Summary")
    st.dataframe(
        summary_rows(results, deterministic, has_ref),
        hide_index=True,
        width="stretch",
        column_config={
            "ELBO": st.column_config.NumberColumn("ELBO (nats)", format="%.1f"),
            "KL": st.column_config.NumberColumn("KL (nats)", format="%.1f"),
            "IWAE": st.column_config.NumberColumn(f"IWAE k={k} (nats)", format="%.1f"),
            "log p(x|ẑ)": st.column_config.NumberColumn("log p(x|ẑ) (nats)", format="%.1f"),
            "S": st.column_config.NumberColumn(
                "S(x) (bits)", format="%.0f", help="−log₂ p(x) − L(x): higher is less typical (see below)."
            ),
            "percentile": st.column_config.NumberColumn(
                "S percentile", format="%.1f", help="Share of test images with a lower S(x), i.e. more typical."
            ),
        },
        key="rc_summary",
    )


def histogram(ref: Reference, good: list[Result]) -> None:
    """The test images' S(x) with each image's S and the verdict's limit."""
    limit = (f"{TYPICAL_PERCENTILE:g}th percentile", ref.s_limit)
    marks = [(r.name, r.s) for r in good[:MARKED]]
    fig = score_histogram(
        ref.s, marks, "S(x)", x_title="S(x) = −log₂ p(x) − L(x), bits (higher: less typical)", limit=limit
    )
    st.plotly_chart(fig, width="stretch", key="rc_hist")


def _typicality(r: Result, deterministic: bool, has_ref: bool) -> None:
    t = r.typicality
    if t is None:
        if not has_ref:
            st.caption("No typicality verdict: the test set is not available.")
        return
    cost = "−log₂ p(x|ẑ)" if deterministic else "−ELBO/ln 2 ≥ −log₂ p(x)"
    st.metric(
        "S(x) percentile among test images",
        f"{t.percentile:.1f}",
        help=f"Share of the {t.n:,} test images whose S(x) is lower (more typical) than this image's.",
    )
    st.caption(
        f"S(x) = {t.codelength:,.0f} bits ({cost}) − {t.complexity:,.0f} bits (L(x), zlib) = {t.s:+,.0f} bits; "
        f"out of distribution above {t.s_limit:+,.0f}, or when the first term is above {t.codelength_limit:,.0f} "
        f"(the {TYPICAL_PERCENTILE:g}th percentiles of the test images)."
    )
    if t.typical:
        st.success(t.verdict(deterministic))
    else:
        st.warning(t.verdict(deterministic))


def _metrics(r: Result, deterministic: bool, has_ref: bool) -> None:
    s, err = r.score, r.error_map
    m = st.columns(3)
    if deterministic:
        m[0].metric("log p(x|ẑ) (nats)", fmt(s.recon), help="Reconstruction log-likelihood of the AE's code.")
        m[1].metric("Mean |x − x̂|", f"{float(err.mean()):.3f}")
        st.caption("An AE has no posterior q(z|x) and no prior, so no ELBO, KL or IWAE: only how well it reconstructs.")
    else:
        m[0].metric(
            "ELBO (nats)", fmt(s.elbo), help="E_q[log p(x|z)] − KL; its expectation is a lower bound on log p(x)."
        )
        m[1].metric("KL (nats)", fmt(s.kl), help="KL(q(z|x) ‖ N(0, I)): the nats this image's code costs.")
        m[2].metric(
            f"IWAE k={s.iwae_k} (nats)",
            fmt(s.iwae),
            help="An estimate whose expectation bounds log p(x) more tightly than the ELBO; it tends to log p(x) "
            "as k grows. One estimate can land on either side of the bounds.",
        )
        st.caption(f"ELBO = reconstruction {fmt(s.recon)} − KL {fmt(s.kl)} nats.")
    _typicality(r, deterministic, has_ref)
    for note in r.notes:
        st.caption(f"Note: {note}.")


def show_result(r: Result, deterministic: bool, has_ref: bool) -> None:
    """One scored image: its preprocessing steps, input, reconstruction, error map and scores."""
    steps = r.prep.steps if r.prep is not None else []
    if steps:
        st.caption("Preprocessing")
        cols = st.columns(max(len(steps), 6))
        for col, (label, img) in zip(cols, steps):
            col.image(thumbnail(img, THUMB), caption=label, width=THUMB)
    cols = st.columns([1, 1, 1, 3])
    side = r.x.shape[-1]
    scale = max(1, round(THUMB / side))  # model images enlarged with sharp pixels
    width = scale * side
    err = r.error_map
    cols[0].image(to_pil(r.x, scale=scale), caption="model input x", width=width)
    cols[1].image(to_pil(r.recon, scale=scale), caption="reconstruction x̂", width=width)
    cols[2].image(heatmap_image(err, scale=scale), caption=f"|x − x̂| (mean {float(err.mean()):.3f})", width=width)
    cols[2].image(colorbar_image(width), caption="0 → 1", width=width)
    with cols[3]:
        _metrics(r, deterministic, has_ref)
