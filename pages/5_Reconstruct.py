"""Reconstruct: upload images (or pick a test image, or draw one); see how the model
preprocesses, reconstructs and scores them, and how typical they are for it."""

import streamlit as st

from services.scoring import IWAE_K, Request
from ui import bound as ui_bound
from ui import reconstruct as ui_rc
from ui.common import cache_key, explain, page_header, upload_images
from ui.texts import RECONSTRUCT, likelihood_note

MAX_FILES = 50  # scored per run; IWAE decodes k samples per image

active = page_header(
    "Reconstruct", "Upload images: see their preprocessing, reconstruction, ELBO and how typical they are."
)
if active is None:
    explain(RECONSTRUCT)
    st.stop()

model, cfg = active.model, active.config
key = cache_key(active)
is_ae = model.deterministic
style, dark = active.upload_style

if active.data is None:
    st.info(
        "This model's test set is not available: images are still reconstructed and scored, "
        "but without the typicality test, which needs the test images."
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
        mc_l = ui_bound.mc_l_input(cfg.arch)
with c2:
    st.caption(
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
    example = ui_rc.example_input(active.data)
with tab_draw:
    drawn = ui_rc.drawing_input(dark)

# --------------------------------------------------------------------------- scoring

requests = [r for r in (example, drawn) if r is not None] + [Request(name, data=b) for name, b in files]
if not requests:
    st.info("Upload one or more images, pick a test image, or draw one to see the model reconstruct and score it.")
    explain(RECONSTRUCT)
    st.stop()

# The test images' scores for the typicality test: computed once per checkpoint, when first needed.
reference = ui_rc.reference(key, model, active.data)
has_ref = reference is not None
score = ui_rc.scorer(key, model, active.data, (style, dark), k, reference)
results = ui_rc.score_requests(requests, score, k)
good = [r for r in results if r.ok]
if good and (note := likelihood_note(cfg.likelihood, cfg.binarize)):
    st.info(note, icon="ℹ️")

if len(results) > 1:
    ui_rc.summary_table(results, is_ae, has_ref, k)
if has_ref and good:
    ui_rc.histogram(reference, good)

if good:
    st.subheader("Reconstructions")
for i, r in enumerate(good):
    label = r.name + ("" if is_ae else f" · ELBO {ui_rc.fmt(r.score.elbo)} nats")
    with st.expander(label, expanded=len(good) <= 3):
        ui_rc.show_result(r, is_ae, has_ref)
        if not is_ae:  # an AE has no q(z|x): nothing to take apart
            ui_bound.show(r, model, key, mc_l, i)

explain(RECONSTRUCT)
