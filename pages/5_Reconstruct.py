"""Reconstruct: upload images (or pick a test image, or draw one); see how the model
preprocesses, reconstructs and scores them, and how typical they are for it."""

import hashlib

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from ui.common import cache_key, explain, page_header
from vae.explore import png_bytes
from vae.images import SUFFIXES, limit_total, to_pil
from vae.scoring import (
    IWAE_K,
    REFERENCE_LIMIT,
    Result,
    colorbar_image,
    heatmap_image,
    process_upload,
    reference_scores,
    score_one,
    typicality,
    uses_binarization,
)

try:  # optional: a drawing canvas, if streamlit-drawable-canvas is installed
    from streamlit_drawable_canvas import st_canvas
except Exception:  # not installed, or incompatible with this Streamlit
    st_canvas = None

MAX_FILES = 50  # scored per run; IWAE decodes k samples per image
EXAMPLES = 200  # test images offered in the picker
THUMB = 112  # preprocessing steps are shown in THUMB x THUMB boxes

EXPLANATION = r"""
Each image is **preprocessed** the way the model's training data were (the row of small images):
orientation from EXIF, transparency flattened onto white, grey (or RGB), inverted if its background is
light while the data's is dark, then cropped / centred / resized to the model's input size.

The **reconstruction** decodes the posterior mean: $\hat x = \mathbb E[p_\theta(x \mid z = \mu_\phi(x))]$,
where $q_\phi(z\mid x) = \mathcal N(\mu, \operatorname{diag}\sigma^2)$ is the encoder. The **error map** shows
$|x - \hat x|$ per pixel (black 0, yellow 1).

The **ELBO** is a lower bound on the image's log-likelihood, in nats per image (higher is better):

$$\mathrm{ELBO}(x) = \mathbb E_{q(z\mid x)}[\log p(x\mid z)] - \mathrm{KL}\big(q(z\mid x)\,\|\,\mathcal N(0, I)\big) \;\le\; \log p(x).$$

Its first term (estimated with 10 samples of $z$) rewards a good reconstruction; the **KL** says how many nats
the code of this image costs against the prior. The **IWAE** bound averages $k$ importance weights,

$$\mathrm{IWAE}_k(x) = \log \frac1k \sum_{i=1}^k \frac{p(x, z_i)}{q(z_i\mid x)}, \quad z_i \sim q(z\mid x), \qquad \mathrm{ELBO} \le \mathrm{IWAE}_k \xrightarrow[k\to\infty]{} \log p(x),$$

so it is a tighter estimate of $\log p(x)$.

**How typical is the image?** Its ELBO is compared with the ELBOs of up to 1,000 test images: the
percentile is the share of test images with a lower ELBO. A **low ELBO** (a low percentile) means the model
finds the image **atypical** — it is unlike what it was trained on (*out of distribution*). Beware: likelihoods
are known to be imperfect detectors (simple, smooth images can score high even if the model never saw them).

If the model has a Bernoulli likelihood and trained on binarized images, every image (uploads and test images)
is scored on the same fixed binarization. An **AE** has no posterior $q(z\mid x)$ and no prior, so it has no ELBO
and no IWAE: only the reconstruction log-likelihood $\log p(x\mid \hat z)$ of its code and the error.
"""

active = page_header(
    "Reconstruct", "Upload images: see their preprocessing, reconstruction, ELBO and how typical they are."
)
if active is None:
    explain(EXPLANATION)
    st.stop()

model, cfg = active.model, active.config
key = cache_key(active)
is_ae = model.deterministic
style, dark = active.upload_style


@st.cache_resource(show_spinner=f"Scoring up to {REFERENCE_LIMIT:,} test images for the percentile…", max_entries=16)
def _reference(model_key: str, _model, _x) -> np.ndarray:
    return reference_scores(_model, _x, limit=REFERENCE_LIMIT)


@st.cache_resource(show_spinner=False, max_entries=256)
def _score_upload(model_key, digest, name, style, dark, k, has_ref, _data, _model, _ref) -> Result:
    return process_upload(name, _data, _model, style=style, dark_background=dark, reference=_ref, iwae_k=k)


@st.cache_resource(show_spinner=False, max_entries=64)
def _score_example(model_key, index, name, k, has_ref, _x, _model, _ref) -> Result:
    result = score_one(name, _x, _model, _ref, iwae_k=k)
    result.notes.append("a test image is already in the model's format: no preprocessing")
    return result


def _safe(name: str, fn, *args) -> Result:
    """Never let an unexpected failure reach the user as a traceback."""
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 - shown as one message naming the file
        return Result(name, error=f"{name}: could not be scored ({e.__class__.__name__}: {e})")


if active.data is None:
    st.info(
        "This model's test set is not available: images are still reconstructed and scored, "
        "but without a percentile against the test set."
    )

# --------------------------------------------------------------------------- inputs

c1, c2 = st.columns([3, 2])
with c1:
    k = IWAE_K
    if not is_ae:
        k = st.select_slider(
            "IWAE samples k",
            options=[100, 1000, 5000],
            value=IWAE_K,
            key="rc_iwae_k",
            help="More samples give a tighter estimate of log p(x), and take longer.",
        )
with c2:
    st.caption(
        f"Model input {cfg.image_shape[1]}×{cfg.image_shape[2]}, {'grey' if cfg.image_shape[0] == 1 else 'RGB'}; "
        f"preprocessing style **{style}**, {'dark' if dark else 'light'} background"
        + ("; scored on a fixed binarization" if uses_binarization(cfg) else "")
        + "."
    )

tab_up, tab_ex, tab_draw = st.tabs(["Upload images", "Use a test image", "Draw"])
with tab_up:
    files = st.file_uploader(
        "Images (PNG, JPEG, GIF, BMP, WebP, TIFF)",
        type=list(SUFFIXES),
        accept_multiple_files=True,
        key="rc_upload",
        help="Each file is preprocessed like the model's data set; unusable files are reported and skipped.",
    )
with tab_ex:
    example = None
    if active.data is None:
        st.caption("No test set is available for this model.")
    else:
        data = active.data
        n_ex = min(EXAMPLES, len(data.test_x))

        def _label(i) -> str:
            return "(none)" if i is None else f"test image #{i} · {data.label_names[int(data.test_y[i])]}"

        example = st.selectbox(
            "Test image",
            [None, *range(n_ex)],
            format_func=_label,
            key="rc_example",
            help="No files at hand? Score one of the model's own test images.",
        )
with tab_draw:
    drawn = None
    if st_canvas is None:
        st.caption(
            "Drawing needs the `streamlit-drawable-canvas` package from requirements.txt "
            "(`pip install streamlit-drawable-canvas`). Meanwhile, pick a test image or upload a file."
        )
    else:
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
        except Exception as e:  # noqa: BLE001
            arr = None
            st.caption(f"The drawing canvas is not working here ({e.__class__.__name__}).")
        if arr is not None and arr.ndim == 3 and arr.shape[-1] == 4:
            img = Image.alpha_composite(Image.new("RGBA", (arr.shape[1], arr.shape[0]), bg), Image.fromarray(arr))
            if np.asarray(img.convert("L")).std() > 0:  # something was drawn
                drawn = img.convert("RGB")

# --------------------------------------------------------------------------- scoring

jobs: list[tuple[str, str, object]] = []  # (name, "example" or "bytes", test index or file bytes)
if example is not None:
    jobs.append((_label(example), "example", example))
files = list(files or [])
if len(files) > MAX_FILES:
    st.warning(f"{len(files)} files uploaded: only the first {MAX_FILES} are scored.")
if drawn is not None:
    jobs.append(("drawing", "bytes", png_bytes(drawn)))
kept, refused = limit_total([(f.name, f.getvalue()) for f in files[:MAX_FILES]])
for name, why in refused:
    st.error(f"{name}: {why}")
jobs += [(name, "bytes", data) for name, data in kept]

if not jobs:
    st.info("Upload one or more images, pick a test image, or draw one to see the model reconstruct and score it.")
    explain(EXPLANATION)
    st.stop()

# The test-set reference for the percentile: computed once per checkpoint, when first needed.
reference = None
if active.data is not None:
    try:
        reference = _reference(key, model, active.data.test_x)
    except Exception as e:  # noqa: BLE001
        st.warning(f"The test-set reference could not be computed ({e}); percentiles are skipped.")
has_ref = reference is not None


def _run(name: str, kind: str, payload) -> Result:
    if kind == "example":
        return _score_example(key, payload, name, k, has_ref, active.data.test_x[payload], model, reference)
    digest = hashlib.sha256(payload).hexdigest()
    return _score_upload(key, digest, name, style, dark, k, has_ref, payload, model, reference)


results: list[Result] = []
bar = st.progress(0.0, text="Scoring…") if len(jobs) > 1 or k > 1000 else None
with st.spinner("Reconstructing and scoring…"):
    for i, (name, kind, payload) in enumerate(jobs):
        if bar is not None:
            bar.progress(i / len(jobs), text=f"Scoring {name} ({i + 1} of {len(jobs)})…")
        results.append(_safe(name, _run, name, kind, payload))
if bar is not None:
    bar.empty()

for r in results:
    if not r.ok:
        st.error(r.error)

good = [r for r in results if r.ok]


def _fmt(v, digits: int = 1) -> str:
    return "—" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


if len(results) > 1:
    st.subheader("Summary")
    rows = [r.row() for r in results]
    if reference is None:
        for row in rows:
            row.pop("percentile")
    if is_ae:
        for row in rows:
            row["log p(x|ẑ)"] = row.pop("ELBO")
            row.pop("KL")
            row.pop("IWAE")
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        column_config={
            "ELBO": st.column_config.NumberColumn("ELBO (nats)", format="%.1f"),
            "KL": st.column_config.NumberColumn("KL (nats)", format="%.1f"),
            "IWAE": st.column_config.NumberColumn(f"IWAE k={k} (nats)", format="%.1f"),
            "log p(x|ẑ)": st.column_config.NumberColumn("log p(x|ẑ) (nats)", format="%.1f"),
            "percentile": st.column_config.NumberColumn("percentile", format="%.1f"),
        },
        key="rc_summary",
    )

if reference is not None and good:
    what = "reconstruction log-likelihood" if is_ae else "ELBO"
    fig = go.Figure(go.Histogram(x=reference, nbinsx=60, name="test images", marker_color="#7f8fa6"))
    for r in good[:20]:
        fig.add_vline(x=r.score.elbo, line_color="#e84118", line_width=2, annotation_text=r.name[:24])
    fig.update_layout(
        height=260,
        margin=dict(l=10, r=10, t=30, b=10),
        title=f"Where the images fall among {len(reference):,} test images' {what}",
        xaxis_title="nats per image (higher: more typical)",
        yaxis_title="test images",
        showlegend=False,
    )
    st.plotly_chart(fig, width="stretch", key="rc_hist")


def show_result(r: Result) -> None:
    steps = r.prep.steps if r.prep is not None else []
    if steps:
        st.caption("Preprocessing")
        cols = st.columns(max(len(steps), 6))
        for col, (label, img) in zip(cols, steps):
            col.image(img, caption=label, width=THUMB)
    cols = st.columns([1, 1, 1, 3])
    scale = max(1, round(THUMB / cfg.image_shape[2]))  # model images enlarged with sharp pixels
    width = scale * cfg.image_shape[2]
    cols[0].image(to_pil(r.x, scale=scale), caption="model input x", width=width)
    cols[1].image(to_pil(r.recon, scale=scale), caption="reconstruction x̂", width=width)
    err = r.error_map
    cols[2].image(heatmap_image(err, scale=scale), caption=f"|x − x̂| (mean {float(err.mean()):.3f})", width=width)
    cols[2].image(colorbar_image(width), caption="0 → 1", width=width)
    s = r.score
    with cols[3]:
        m = st.columns(3)
        if is_ae:
            m[0].metric("log p(x|ẑ) (nats)", _fmt(s.recon), help="Reconstruction log-likelihood of the AE's code.")
            m[1].metric("Mean |x − x̂|", f"{float(err.mean()):.3f}")
            st.caption(
                "An AE has no posterior q(z|x) and no prior, so no ELBO, KL or IWAE: only how well it reconstructs."
            )
        else:
            m[0].metric("ELBO (nats)", _fmt(s.elbo), help="E_q[log p(x|z)] − KL; a lower bound on log p(x).")
            m[1].metric("KL (nats)", _fmt(s.kl), help="KL(q(z|x) ‖ N(0, I)): the nats this image's code costs.")
            m[2].metric(
                f"IWAE k={s.iwae_k} (nats)", _fmt(s.iwae), help="A tighter bound; tends to log p(x) as k grows."
            )
            st.caption(f"ELBO = reconstruction {_fmt(s.recon)} − KL {_fmt(s.kl)} nats.")
        if r.percentile is not None:
            st.metric(
                "Percentile among test images",
                f"{r.percentile:.1f}",
                help="Share of test images whose score is lower than this image's.",
            )
            st.caption(typicality(r.percentile).capitalize() + ".")
        elif reference is None:
            st.caption("No percentile: the test set is not available.")
        for note in r.notes:
            st.caption(f"Note: {note}.")


if good:
    st.subheader("Reconstructions")
for r in good:
    label = r.name + ("" if is_ae else f" · ELBO {_fmt(r.score.elbo)} nats")
    with st.expander(label, expanded=len(good) <= 3):
        show_result(r)

explain(EXPLANATION)
