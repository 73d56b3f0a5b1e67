"""Streamlit glue of the Reconstruct page: cached scoring, the inputs, the table, chart and result panels.

Widgets whose choices depend on the model or its data set (the test-image picker, k, L, the canvas's
colours) are keyed by it (``ui.state.scoped``); the uploads are not: the same files can be scored by
one model after another."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import streamlit as st

from services.explore import png_bytes
from services.scoring import (
    IWAE_K,
    REFERENCE_LIMIT,
    SCORE_SAMPLES,
    Reference,
    Request,
    Result,
    process_upload,
    score_all,
    score_test_image,
    summary_rows,
    typicality_reference,
)
from ui import bound as ui_bound
from ui.common import Active, upload_images
from ui.pictures import colorbar_image, drawing, heatmap_image, thumbnail
from ui.state import scoped
from ui.typicality import VERDICT_HELP, limits_caption, s_histogram, short_verdict, verdict
from vae.data import Dataset
from vae.images import to_pil

try:  # optional: a drawing canvas, if streamlit-drawable-canvas is installed
    from streamlit_drawable_canvas import st_canvas
except Exception:  # not installed, or incompatible with this Streamlit
    st_canvas = None

EXAMPLES = 200  # test images offered in the picker
THUMB = 112  # preprocessing steps are shown in THUMB x THUMB boxes
MARKED = 20  # images marked on the histogram
MAX_FILES = 50  # scored per run; IWAE decodes k samples per image
ELBO_L = f"L = {SCORE_SAMPLES}"  # the samples of the summary's ELBO, named wherever it is shown
TABLE_ORDER = ("file", "verdict", "S", "percentile", "ELBO", "log p(x|ẑ)", "KL", "IWAE", "status")
NOTE_TEXT = {  # services.scoring.NOTES in words
    "inverted": "inverted: it has a light background, the model's images a dark one",
    "binarized": "binarized with a fixed seed, as the model trained on binarized images",
    "test image": "a test image is already in the model's format: no preprocessing",
}


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


def example_input(data: Dataset | None, key: str) -> Request | None:
    """The test-image picker ``rc_example`` (scoped to the model ``key``): the picked image as a request."""
    if data is None:
        st.caption("No test set is available for this model.")
        return None
    example = st.selectbox(
        "Test image",
        [None, *range(min(EXAMPLES, len(data.test_x)))],
        format_func=lambda i: example_label(data, i),
        key=scoped("rc_example", key),
        help="No files at hand? Score one of the model's own test images.",
    )
    return None if example is None else Request(example_label(data, example), index=example)


def drawing_input(dark: bool, key: str) -> Request | None:
    """The drawing canvas ``rc_canvas`` (if its package is installed; scoped to the model ``key``, whose data
    set sets its colours): a drawing as a PNG request."""
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
            key=scoped("rc_canvas", key),
        )
        arr = canvas.image_data if canvas is not None else None
    except Exception as e:  # noqa: BLE001 - a broken optional widget must not break the page
        arr = None
        st.caption(f"The drawing canvas is not working here ({e.__class__.__name__}).")
    img = drawing(arr, bg)
    return None if img is None else Request("drawing", data=png_bytes(img))


def fmt(v: float | None, digits: int = 1) -> str:
    return "—" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


@dataclass
class Inputs:
    """What the page's inputs ask for: IWAE's k, the bound panel's L (None for an AE), the images to score."""

    k: int
    mc_l: int | None
    requests: list[Request]


def _settings(active: Active, key: str) -> tuple[int, int | None]:
    """The select sliders k (``rc_iwae_k``) and L (``rc_mc_l``), both scoped to the model: an AE has neither."""
    if active.model.deterministic:
        return IWAE_K, None
    k = st.select_slider(
        "IWAE samples k",
        options=[100, 1000, 5000],
        value=IWAE_K,
        key=scoped("rc_iwae_k", key),
        help="More samples give a tighter estimate of log p(x), and take longer.",
    )
    return k, ui_bound.mc_l_input(active.config.arch, key)


def inputs(active: Active, key: str) -> Inputs:
    """k and L beside a line on the model's input, then the three ways in: upload, a test image, a drawing."""
    cfg, (style, dark) = active.config, active.upload_style
    c1, c2 = st.columns([3, 2])
    with c1:
        k, mc_l = _settings(active, key)
    c2.caption(
        f"Model input {cfg.image_shape[1]}×{cfg.image_shape[2]}, {'grey' if cfg.image_shape[0] == 1 else 'RGB'}; "
        f"preprocessing style **{style}**, {'dark' if dark else 'light'} background"
        + ("; scored on a fixed binarization" if cfg.binarize else "")
        + "."
    )
    tab_up, tab_ex, tab_draw = st.tabs(["Upload images", "Use a test image", "Draw"])
    with tab_up:
        files = upload_images(
            "Images (PNG, JPEG, GIF, BMP, WebP, TIFF)",
            key="rc_upload",
            help="Each file is preprocessed like the model's data set; unusable files are reported and skipped.",
            max_files=MAX_FILES,
            purpose="scored",
        )
    with tab_ex:
        example = example_input(active.data, key)
    with tab_draw:
        drawn = drawing_input(dark, key)
    requests = [r for r in (example, drawn) if r is not None] + [Request(name, data=b) for name, b in files]
    return Inputs(k, mc_l, requests)


def summary_table(results: list[Result], deterministic: bool, has_ref: bool, k: int) -> None:
    """One row per image; the verdict cell names the failed tests in a few characters (help and caption
    say what they mean), a failure's message is shown above the table, not in a cell."""
    st.subheader("Summary")
    rows = summary_rows(results, deterministic, has_ref)
    for row in rows:
        if "verdict" in row:
            row["verdict"] = short_verdict(row["verdict"])
        row["status"] = "ok" if row["status"] == "ok" else "not scored (see above)"
    failed = any(r["status"] != "ok" for r in rows)
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        # what a narrow window shows first: the name and the verdict; the status only when a file failed
        column_order=[c for c in TABLE_ORDER if c in rows[0] and (c != "status" or failed)],
        column_config={
            "file": st.column_config.TextColumn("file", width="medium", pinned=True),
            "ELBO": st.column_config.NumberColumn(
                f"ELBO, {ELBO_L} (nats)", format="%.1f", help=f"Monte Carlo estimate with {ELBO_L} samples of z."
            ),
            "KL": st.column_config.NumberColumn("KL (nats)", format="%.1f"),
            "IWAE": st.column_config.NumberColumn(f"IWAE k={k} (nats)", format="%.1f"),
            "log p(x|ẑ)": st.column_config.NumberColumn("log p(x|ẑ) (nats)", format="%.1f"),
            "S": st.column_config.NumberColumn(
                "S(x) (bits)", format="%.0f", help="−log₂ p(x) − L(x): higher is less typical (see below)."
            ),
            "percentile": st.column_config.NumberColumn(
                "S percentile", format="%.1f", help="Share of test images with a lower S(x), i.e. more typical."
            ),
            "verdict": st.column_config.TextColumn("verdict", width="medium", help=VERDICT_HELP),
            "status": st.column_config.TextColumn("status", width="small"),
        },
        key="rc_summary",
    )
    if has_ref:
        st.caption(VERDICT_HELP)


def histogram(ref: Reference, good: list[Result]) -> None:
    """The test images' S(x) with each image's S (numbered; the legend names them) and the verdict's limit."""
    fig, clipped = s_histogram(ref.s, [(r.name, r.s) for r in good[:MARKED]], ref.s_limit)
    st.plotly_chart(fig, width="stretch", key="rc_hist")
    if clipped:
        far = max((r.s for r in good[:MARKED]), key=abs)
        which = "One image lies" if clipped == 1 else f"{clipped} images lie"
        st.caption(
            f"{which} far beyond the test images (S up to {far:+,.0f} bits): drawn at the axis' edge (▶ or ◀, "
            "dotted line) so that the test images stay readable; the legend gives the true S."
        )
    if len(good) > MARKED:
        st.caption(f"The first {MARKED} of {len(good)} images are marked.")


def _typicality(r: Result, deterministic: bool, has_ref: bool) -> None:
    t = r.typicality
    if t is None:
        if not has_ref:
            st.caption("No typicality verdict: the test set is not available.")
        return
    st.metric(
        "S(x) percentile among test images",
        f"{t.percentile:.1f}",
        help=f"Share of the {t.n:,} test images whose S(x) is lower (more typical) than this image's.",
    )
    st.caption(limits_caption(t, deterministic))
    (st.success if t.typical else st.warning)(verdict(t, deterministic))


def _metrics(r: Result, deterministic: bool, has_ref: bool) -> None:
    s, err = r.score, r.error_map
    m = st.columns(3)
    if deterministic:
        m[0].metric("log p(x|ẑ) (nats)", fmt(s.recon), help="Reconstruction log-likelihood of the AE's code.")
        m[1].metric("Mean |x − x̂|", f"{float(err.mean()):.3f}")
        st.caption("An AE has no posterior q(z|x) and no prior, so no ELBO, KL or IWAE: only how well it reconstructs.")
    else:
        m[0].metric(
            f"ELBO (nats), {ELBO_L}",
            fmt(s.elbo),
            help=f"E_q[log p(x|z)] − KL with {ELBO_L} samples of z (the estimate the verdict and the table use); "
            "its expectation is a lower bound on log p(x).",
        )
        m[1].metric("KL (nats)", fmt(s.kl), help="KL(q(z|x) ‖ N(0, I)): the nats this image's code costs.")
        m[2].metric(
            f"IWAE k={s.iwae_k} (nats)",
            fmt(s.iwae),
            help="An estimate whose expectation bounds log p(x) more tightly than the ELBO; it tends to log p(x) "
            "as k grows. One estimate can land on either side of the bounds.",
        )
        st.caption(f"ELBO ({ELBO_L}) = reconstruction {fmt(s.recon)} − KL {fmt(s.kl)} nats.")
    _typicality(r, deterministic, has_ref)
    for note in r.notes:
        st.caption(f"Note: {NOTE_TEXT[note]}.")


def show_result(r: Result, deterministic: bool, has_ref: bool) -> None:
    """One scored image: its preprocessing steps, input, reconstruction, error map and scores."""
    steps = r.prep.steps if r.prep is not None else []
    if steps:
        st.caption("Preprocessing")
        cols = st.columns(max(len(steps), 6))
        for col, (label, img) in zip(cols, steps):
            col.image(thumbnail(img, THUMB), caption=label, width=THUMB)
    cols = st.columns(3)  # the scores below, at the full width: their labels and values are never cut
    side = r.x.shape[-1]
    scale = max(1, round(THUMB / side))  # model images enlarged with sharp pixels
    width = scale * side
    err = r.error_map
    cols[0].image(to_pil(r.x, scale=scale), caption="model input x", width=width)
    cols[1].image(to_pil(r.recon, scale=scale), caption="reconstruction x̂", width=width)
    cols[2].image(heatmap_image(err, scale=scale), caption=f"|x − x̂| (mean {float(err.mean()):.3f})", width=width)
    cols[2].image(colorbar_image(width), caption="0 → 1", width=width)
    _metrics(r, deterministic, has_ref)


def expander_label(r: Result, deterministic: bool) -> str:
    """A result's expander title: its name and, for a VAE, its ELBO with the L it was estimated with."""
    return r.name + ("" if deterministic else f" · ELBO {fmt(r.score.elbo)} nats ({ELBO_L})")
