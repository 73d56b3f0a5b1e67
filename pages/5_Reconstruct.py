"""Reconstruct: upload images (or pick a test image, or draw one); see how the model
preprocesses, reconstructs and scores them, and how typical they are for it."""

import streamlit as st

from ui import bound as ui_bound
from ui import reconstruct as ui_rc
from ui.common import cache_key, explain, page_header
from ui.texts import RECONSTRUCT, likelihood_note

active = page_header(
    "Reconstruct", "Upload images: see their preprocessing, reconstruction, ELBO and how typical they are."
)
if active is None:
    explain(RECONSTRUCT)
    st.stop()

model, cfg = active.model, active.config
key = cache_key(active)
is_ae = model.deterministic

if active.data is None:
    st.info(
        "This model's test set is not available: images are still reconstructed and scored, "
        "but without the typicality test, which needs the test images."
    )

chosen = ui_rc.inputs(active, key)
if not chosen.requests:
    st.info("Upload one or more images, pick a test image, or draw one to see the model reconstruct and score it.")
    explain(RECONSTRUCT)
    st.stop()

# The test images' scores for the typicality test: computed once per checkpoint, when first needed.
reference = ui_rc.reference(key, model, active.data)
has_ref = reference is not None
score = ui_rc.scorer(key, model, active.data, active.upload_style, chosen.k, reference)
results = ui_rc.score_requests(chosen.requests, score, chosen.k)
good = [r for r in results if r.ok]
if good and (note := likelihood_note(cfg.likelihood, cfg.binarize)):
    st.info(note, icon="ℹ️")

if len(results) > 1:
    ui_rc.summary_table(results, is_ae, has_ref, chosen.k)
if has_ref and good:
    ui_rc.histogram(reference, good)

if good:
    st.subheader("Reconstructions")
for i, r in enumerate(good):
    with st.expander(ui_rc.expander_label(r, is_ae), expanded=len(good) <= 3):
        ui_rc.show_result(r, is_ae, has_ref)
        if not is_ae:  # an AE has no q(z|x): nothing to take apart
            ui_bound.show(r, model, key, chosen.mc_l, i)

explain(RECONSTRUCT)
