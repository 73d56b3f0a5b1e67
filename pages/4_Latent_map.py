"""Latent map: the encoded test set in 2-D by any registered projection (services.projections: raw codes,
PCA, SVD, t-SNE); hovering decodes in the browser (ui/components/latent_map.js), a click picks a point;
uploads appear as stars; for a 2-D latent, the decoded manifold grid. Without live decoding, the plotly
map of ui.figures stands in."""

import streamlit as st

from ui import latent_map as ui_map
from ui.common import explain, page_header

active = page_header(
    "Latent map",
    "The encoded test set in 2-D: hover to decode, click a point to pick it, upload images to place them.",
)
if active is None or active.data is None:
    ui_map.no_data(active)
    st.stop()

page = ui_map.MapPage.of(active)
n, method, ups = ui_map.controls(page)
view, note = ui_map.current_view(page, n, method)

left, right = st.columns([2, 1])
with left:
    ui_map.show_map(page, view, note, ups)
with right:
    st.subheader("Selected point")
    ui_map.selected_point(page)
ui_map.neighbours_strip(page)

if len(ups.names):
    ui_map.uploads_panel(page, ups)
if active.config.latent_dim == 2:
    ui_map.manifold_section(page)

explain(ui_map.explanation())
