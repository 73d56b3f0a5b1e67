"""Latent sliders: one slider per latent dimension and a 2-D pad, decoded in the browser as the mouse
moves (on the server where the browser cannot); traversals of the code, one row or every dimension."""

import streamlit as st

from ui import sliders as ui_sl
from ui.common import cache_key, explain, page_header
from ui.live import decoder_for
from ui.texts import SLIDERS, SLIDERS_AE

active = page_header("Latent sliders", "Move each latent dimension and watch the decoder's image change.")
if active is None:
    st.stop()
model, cfg, data = active.model, active.config, active.data
key = cache_key(active)
shape = tuple(cfg.image_shape)

setup = ui_sl.setup(key, model, data)
ui_sl.settle(key, setup, model, data)
ui_sl.start_controls(setup, data)
decoder = ui_sl.failed(decoder_for(key, model))


@st.fragment
def explorer() -> None:
    """A release (or a key press) reruns only this part: it reads the code and redraws what uses it."""
    pad = None
    if decoder.available:
        base = ui_sl.live_sliders(decoder, setup, key, shape)
        panel = st.container()  # filled after the pad, whose release may have changed the code
        pad = ui_sl.live_pad(base, setup, key, shape)
    else:
        ui_sl.server_sliders(model, setup, decoder, shape)
        panel = st.container()
        pad = ui_sl.server_pad(model, setup, key, shape)
    with panel:
        z = ui_sl.code_panel(model, setup, pad)
    ui_sl.traversals(model, setup, z)


explorer()

explain(SLIDERS_AE if model.deterministic else SLIDERS)
