"""Latent map: the encoded test set in 2-D (raw codes, PCA, t-SNE); hovering decodes in the browser
(ui/components/latent_map.js), a click picks a point; uploads appear as stars; for a 2-D latent, the
decoded manifold grid. Without live decoding, the plotly map of ui.figures stands in."""

import streamlit as st

from services import maps
from ui import latent_map as ui_map
from ui.common import cache_key, codes_of, explain, page_header, upload_images
from ui.figures import AXIS_TITLES, map_figure
from ui.live import decoder_for, fallback_note
from ui.texts import LATENT_MAP

active = page_header(
    "Latent map",
    "The encoded test set in 2-D: hover to decode, click a point to pick it, upload images to place them.",
)
if active is None:
    explain(LATENT_MAP)
    st.stop()
if active.data is None:
    st.warning(
        "This model's data set is not available here, so there is no test set to draw."
        + (f" ({active.data_note})" if active.data_note else "")
        + " Pick another model in the sidebar."
    )
    explain(LATENT_MAP)
    st.stop()

model, cfg, data = active.model, active.config, active.data
D = cfg.latent_dim
model_key = cache_key(active)
all_codes = codes_of(f"{model_key}:test", model, data.test_x)[: maps.MAX_POINTS]  # (N, D), cached per checkpoint
n_max = len(all_codes)
methods = maps.methods_for(D)
n_min = min(50, n_max)
maps.settle_state(st.session_state, model_key, methods, n_min, n_max)

# --------------------------------------------------------------------------- controls

c1, c2, c3 = st.columns([2, 2, 3])
n = c1.slider(
    "Test images on the map",
    n_min,
    n_max,
    min(2000, n_max),
    step=1 if n_max < 500 else 50,
    key="map_n",
    help="The first n images of the test split. t-SNE takes longer the more points it has.",
)
method = c2.radio(
    "Projection",
    methods,
    format_func=maps.METHOD_NAMES.get,
    key="map_method",
    horizontal=True,
    help="PCA is immediate; t-SNE is computed in the background (once per model and n; then cached on disk).",
)
with c3:
    files = upload_images(
        "Place your own images on the map",
        key="map_upload",
        help="Each image is preprocessed like the training data and encoded to its posterior mean.",
    )
    style, dark = active.upload_style
    ups = ui_map.encode_uploads(model_key, files, style, dark, model)

codes = all_codes[:n].numpy()
labels = data.test_y[:n].numpy()

# --------------------------------------------------------------------------- the map

view = maps.current_map(codes, method, st.session_state.get("map_tsne_key"))
if view.tsne_key is not None:
    st.session_state["map_tsne_key"] = view.tsne_key
note = ui_map.tsne_status(view, n)
lmap = view.lmap

try:
    up_xy = lmap.place(ups.codes) if len(ups.names) else None
except ValueError as e:  # cannot happen with codes of this model; never show a traceback anyway
    st.error(f"The uploads cannot be placed on this map: {e}")
    up_xy = None

square = maps.grid_square() if lmap.method == "raw" and D == 2 else None
decoder = decoder_for(model_key, model)

left, right = st.columns([2, 1])
with left:
    st.caption(
        f"{n:,} test images · {maps.METHOD_NAMES[lmap.method]} of {D}-D {'codes' if model.deterministic else 'posterior means'}"
        + (f" · {len(ups.names)} upload(s) as ★" if len(ups.names) else "")
        + (f" · {note}" if note else "")
    )
    ells = ui_map.ellipses(model_key, model, data, lmap)
    if decoder.available:  # hover decodes in the browser; a click picks a point
        ui_map.live_map(decoder, model_key, lmap, labels, data, ups, up_xy, AXIS_TITLES[lmap.method], square, ells)
    else:
        fallback_note(decoder)
        fig = map_figure(
            lmap.xy,
            labels,
            [str(s) for s in data.label_names],
            upload_xy=up_xy,
            upload_names=ups.names,
            axis_titles=AXIS_TITLES[lmap.method],
            square=square,
            ellipses=ells,
        )
        st.plotly_chart(
            fig,
            key="map_chart",
            on_select=ui_map.on_select,
            selection_mode="points",
            config={"scrollZoom": True, "displaylogo": False},
        )

with right:
    st.subheader("Selected point")
    ui_map.selected_point(model, data, all_codes)

if len(ups.names):
    ui_map.uploads_panel(model, data, all_codes, ups)

if D == 2:
    ui_map.manifold_section(model_key, model)

explain(LATENT_MAP)
