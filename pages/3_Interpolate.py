"""Interpolate: walk from one image to another in latent space — the VAE, the AE and a cross-fade; a
scrubber beside A and B decodes any t in the browser as it is dragged (ui/components/interpolate.js)."""

import streamlit as st

from services.explore import example_ends, fits_pictures
from ui.common import explain, page_header
from ui.endpoints import endpoint
from ui.interpolate import compute, distance_chart, downloads, path_models, path_settings, scrubber, strips
from ui.moons import moon_argument, row_caption
from ui.texts import INTERPOLATE

active = page_header(
    "Interpolate", "Walk between two images in latent space; compare the VAE, the AE and a pixel cross-fade."
)
if active is None:
    st.stop()
data = active.data
if data is None:
    st.warning("This model's data set is not available, so there are no images to interpolate between.")
    st.stop()
# The one data-set check of the page: on moons the seeds' example ends, fitted phases and the moon argument.
is_moons = fits_pictures(data)

default_a, default_b = example_ends(data)
ca, cb, cs = st.columns([2, 2, 3], gap="medium")  # cs: the live scrubber, once the paths are known
with ca:
    end_a = endpoint(active, "a", default_a, "Start (A)")
with cb:
    end_b = endpoint(active, "b", default_b, "End (B)")
if not (end_a and end_b):
    st.stop()

steps, method = path_settings()
models = path_models(active)
result = compute(active, models, end_a.x, end_b.x, steps, method, is_moons)

strips(result, row_caption)
distance_chart(active, result)
with cs:  # filled after the strips, so that they show while the decoders are exported for the browser
    scrubber(result, method, is_moons)

if is_moons:
    ref_phase = data.extra[f"{result.ref.split}_phase"][result.ref.index]
    moon_argument(result.paths, result.codes, result.fits, end_a.x, end_b.x, ref_phase)

downloads(result.rows[0].frames)
explain(INTERPOLATE)
