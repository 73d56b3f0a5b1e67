"""Streamlit glue of the Latent map page: its model-scoped widgets, the map (live view or plotly figure)
with its overlays, the background projection's progress, the selected point and the uploads panels.

Every widget whose choices depend on the model or its test set (the number of points, the projection,
the picked image) is keyed by ``ui.state.scoped`` with the model's cache key: another model gets its own
widgets and defaults, and switching back restores what was chosen there.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st
import torch

from services import maps, projections
from services.explore import decode_batches
from services.live_views import map_payload, sprite_sheet
from services.map_overlays import map_overlays
from services.projections import Projection
from ui.common import Active, cache_key, codes_of, explain, show, upload_images
from ui.figures import map_figure, palette, selected_index, styled
from ui.live import component, decoder_for, fallback_note
from ui.state import dim_label, scoped
from ui.texts import LATENT_MAP
from vae.data import Dataset

NEIGHBOURS = 8  # nearest test images shown for a picked point
UPLOAD_NEIGHBOURS = 5  # ... and for each upload
JOB_KEY = "map_job_key"  # session key (no widget): the background projection this session asked for
TILE = 84  # pixels: the width of a neighbour's picture, which its caption must fit in (two lines at most)


@dataclass
class MapPage:
    """What the page works on: the model, its test set, the codes of up to MAX_POINTS test images (N, D)
    and the model-scoped widget keys."""

    active: Active
    model_key: str
    codes: torch.Tensor

    @classmethod
    def of(cls, active: Active) -> MapPage:
        key = cache_key(active)
        assert active.data is not None
        codes = codes_of(f"{key}:test", active.model, active.data.test_x)[: maps.MAX_POINTS]
        return cls(active, key, codes)

    @property
    def data(self) -> Dataset:
        assert self.active.data is not None
        return self.active.data

    @property
    def n_max(self) -> int:
        return len(self.codes)

    def key(self, name: str) -> str:
        """The widget key ``name`` scoped to this model and test set."""
        return scoped(name, self.model_key)

    def pick(self) -> int | None:
        got = st.session_state.get(self.key("map_pick"))
        return None if got is None else int(got)


def explanation() -> str:
    """The page's 'What am I seeing?' text, with each registered projection's paragraph."""
    return LATENT_MAP.replace("<!-- projections -->", "\n".join(f"- {p.about}" for p in projections.REGISTRY.values()))


def no_data(active: Active | None) -> None:
    """Explain why there is no map (no model, or its test set is not here) and stop the page."""
    if active is not None:
        note = f" ({active.data_note})" if active.data_note else ""
        st.warning(
            f"This model's data set is not available here, so there is no test set to draw.{note}"
            " Pick another model in the sidebar."
        )
    explain(explanation())
    st.stop()


def axis_titles(p: Projection) -> tuple[str, str]:
    """The map's axis titles: z's own dimensions (ui.state.dim_label) or the projection's axes."""
    return (dim_label(0), dim_label(1)) if p.axis is None else (f"{p.axis} 1", f"{p.axis} 2")


def controls(page: MapPage) -> tuple[int, str, maps.Uploads]:
    """The number of points, the projection and the uploads (encoded by the model)."""
    n_max, n_min = page.n_max, min(50, page.n_max)
    methods = maps.methods_for(page.active.config.latent_dim)
    slow = " and ".join(projections.get(m).title for m in methods if projections.get(m).background) or "none"
    c1, c2 = st.columns(2)
    n = c1.slider(
        "Test images on the map", n_min, n_max, min(2000, n_max), step=1 if n_max < 500 else 50, key=page.key("map_n"),
        help=f"The first n images of the test split. Slow projections ({slow}) take longer the more points there are.",
    )  # fmt: skip
    method = c2.radio(
        "Projection", methods, key=page.key("map_method"), horizontal=True,
        format_func=lambda m: projections.get(m).title,
        help=f"Slow projections ({slow}) are computed in the background, once per model and n, then cached on disk; "
        "the others are immediate.",
    )  # fmt: skip
    # Full width: in a third of the page the uploader's own "200MB per file • PNG, JPG…" line is cut at 1024 px.
    files = upload_images(
        "Place your own images on the map", key="map_upload",
        help="Each image is preprocessed like the training data and encoded to its posterior mean.",
    )  # fmt: skip
    ups = encode_uploads(page.model_key, files, *page.active.upload_style, page.active.model)
    return n, method, ups


@st.cache_resource(show_spinner="Decoding the grid…", max_entries=16)
def _manifold(model_key: str, k: int, _model) -> torch.Tensor:
    """The k x k decoded grid (up to 900 decodes): once per model and size, not on every click."""
    return maps.manifold_image(_model, k)


@st.cache_resource(show_spinner=False, max_entries=32)
def _encode(model_key: str, digests: tuple, style: str, dark: bool, _files, _model) -> maps.Uploads:
    """Uploads preprocessed and encoded once per model and set of files (not again on every click)."""
    return maps.encode_uploads(_files, _model, style=style, dark_background=dark)


def encode_uploads(model_key: str, files: list[tuple[str, bytes]], style: str, dark: bool, model) -> maps.Uploads:
    """The uploads (name, bytes) encoded by the model (cached by content), each unusable file as an error."""
    if not files:
        return maps.Uploads([], torch.zeros(0), torch.zeros(0, model.latent_dim), [])
    digests = tuple((name, hashlib.sha256(b).hexdigest()) for name, b in files)
    with st.spinner(f"Encoding {len(files)} upload(s)…"):
        ups = _encode(model_key, digests, style, dark, files, model)
    for name, why in ups.errors:
        st.error(f"{name}: {why}")
    return ups


@st.fragment(run_every=1.0)
def job_progress(key: str, title: str, n: int) -> None:
    """Polls the background projection; reruns the page once it has finished."""
    job = maps.RUNNER.get(key)
    if job is None or job.done:
        st.rerun()
    waiting = job.state == "queued"
    text = (
        f"{title} waits for another map to finish…"
        if waiting
        else f"Computing {title} of {n:,} codes in the background: {job.message} ({job.elapsed:.0f} s)"
    )
    st.progress(job.progress, text=text)


def current_view(page: MapPage, n: int, method: str) -> tuple[maps.MapView, str]:
    """The map to draw now, and a note for the caption; shows a failed background projection (with a
    retry button) or its progress."""
    view = maps.current_map(page.codes[:n].numpy(), method, st.session_state.get(JOB_KEY))
    if view.job_key is not None:
        st.session_state[JOB_KEY] = view.job_key
    title, stand_in = projections.get(method).title, projections.get(maps.STAND_IN).title
    if view.error is not None:
        st.error(f"{title} failed: {view.error}")
        if st.button("Try again", key="map_job_retry"):
            maps.RUNNER.forget(view.job_key)
            st.rerun()
    elif view.waiting:
        job_progress(view.job_key, title, n)
        return view, f"{stand_in} is shown until {title} has finished."
    return view, ""


def on_select(page: MapPage) -> None:
    """The plotly map's click callback: a clicked test point becomes the picked image."""
    event = st.session_state.get("map_chart")
    idx = selected_index(event["selection"]["points"] if event else [])
    if idx is not None:
        st.session_state[page.key("map_pick")] = idx


def on_live_pick(page: MapPage) -> None:
    """The live map's click trigger: the clicked test point becomes the picked image."""
    got = (st.session_state.get("map_live") or {}).get("pick")
    if isinstance(got, int) and got >= 0:
        st.session_state[page.key("map_pick")] = got


@st.cache_resource(show_spinner=False, max_entries=8)
def _sprite(key: str, _images: torch.Tensor) -> dict:
    """The thumbnails as one PNG sprite sheet, once per model, number of points and set of uploads."""
    return sprite_sheet(_images)


@st.cache_resource(show_spinner="Encoding σ of the test set…", max_entries=16)
def _stds(key: str, _model, _x: torch.Tensor) -> np.ndarray | None:
    """σ (N, D) of q(z|x) for the test images, once per checkpoint (None for an AE)."""
    return maps.encode_std(_model, _x)


def _ellipse_inputs(page: MapPage, lmap: maps.LatentMap) -> tuple[np.ndarray | None, bool]:
    """σ of the test codes and the clouds checkbox ``map_clouds``, or a caption saying why there are no ellipses."""
    model = page.active.model
    if model.deterministic:
        st.caption("An AE's code is a point, not a distribution: it has no σ, so there are no posterior ellipses.")
        return None, False
    if maps.projected_covariances(np.ones((1, page.codes.shape[1])), lmap) is None:
        title, linear = lmap.projection.title, projections.get(maps.STAND_IN).title
        st.caption(f"{title} is no linear projection, so q(z|x) has no ellipse on it: pick {linear} to see them.")
        return None, False
    clouds = st.checkbox(
        "Every point's ±1σ ellipse (the noise clouds)", key="map_clouds",
        help="q(z|x) of each shown image: where the overlapping clouds cover the plane, codes decode to something.",
    )  # fmt: skip
    return _stds(f"{page.model_key}:test", model, page.data.test_x[: maps.MAX_POINTS]), clouds


def overlays(page: MapPage, lmap: maps.LatentMap, ups: maps.Uploads, up_xy: np.ndarray | None) -> list[dict]:
    """The styled overlays (services.map_overlays) of the picked point, the uploads and the grid's square."""
    std, clouds = _ellipse_inputs(page, lmap)
    pick, n = page.pick(), len(lmap.xy)
    near = [] if pick is None else [j for j, _ in maps.neighbour_list(page.codes, pick, NEIGHBOURS) if j < n]
    square = maps.grid_square() if lmap.method == "raw" and page.codes.shape[1] == 2 else None
    layers = map_overlays(lmap, std, pick, clouds, near, up_xy, ups.names, square)
    return styled(layers)


def place_uploads(lmap: maps.LatentMap, ups: maps.Uploads) -> np.ndarray | None:
    """The uploads' positions (M, 2) on the map, or None (none, or they cannot be placed)."""
    try:
        return lmap.place(ups.codes) if len(ups.names) else None
    except ValueError as e:  # cannot happen with codes of this model; never show a traceback anyway
        st.error(f"The uploads cannot be placed on this map: {e}")
        return None


def hover_note(p: Projection) -> str:
    """What the live view says about decoding under the mouse on this projection."""
    return p.hover or f"{p.title} has no inverse: a position on this map is no code, so nothing is decoded here."


def show_map(page: MapPage, view: maps.MapView, note: str, ups: maps.Uploads) -> None:
    """The caption, the ellipse option and the map: the live view (hover decodes in the browser, a click
    picks a point) or, where the browser cannot decode, the plotly figure."""
    lmap, d = view.lmap, page.active.config.latent_dim
    what = "codes" if page.active.model.deterministic else "posterior means"
    extra = (f" · {len(ups.names)} upload(s) as ★" if len(ups.names) else "") + (f" · {note}" if note else "")
    st.caption(f"{len(lmap.xy):,} test images · {lmap.projection.title} of {d}-D {what}{extra}")
    layers = overlays(page, lmap, ups, place_uploads(lmap, ups))
    labels = page.data.test_y[: len(lmap.xy)].numpy()
    decoder = decoder_for(page.model_key, page.active.model)
    if decoder.available:
        _live_map(page, decoder, lmap, labels, ups, layers)
        return
    fallback_note(decoder)
    fig = map_figure(lmap.xy, labels, [str(s) for s in page.data.label_names], layers, axis_titles(lmap.projection))
    config = {"scrollZoom": True, "displaylogo": False}
    st.plotly_chart(fig, key="map_chart", on_select=lambda: on_select(page), selection_mode="points", config=config)


def _live_map(
    page: MapPage, decoder: Any, lmap: maps.LatentMap, labels: np.ndarray, ups: maps.Uploads, layers: list
) -> None:
    """The map as a live view (ui/components/latent_map.js, static/live/map_view.mjs)."""
    n = len(lmap.xy)
    data = page.data
    images = torch.cat([data.test_x[:n], ups.images.reshape(-1, *data.test_x.shape[1:])])
    names = [str(s) for s in data.label_names]
    sprite = _sprite(f"{page.model_key}:{n}:{hashlib.sha256(ups.images.numpy().tobytes()).hexdigest()}", images)
    p = lmap.projection
    payload = map_payload(lmap, labels, names, palette(len(names)), sprite, layers, axis_titles(p), hover_note(p))
    component("latent_map")(
        key="map_live", data={"decoder": decoder.data(), **payload}, on_pick_change=lambda: on_live_pick(page)
    )


def _label_of(data: Dataset, j: int) -> str:
    return str(data.label_names[int(data.test_y[j])])


def _labels_line(data: Dataset, idx: list[int]) -> str:
    """'full moon ×5, new moon ×3': the labels of the test images idx, most common first."""
    return ", ".join(f"{name} ×{k}" for name, k in Counter(_label_of(data, j) for j in idx).most_common())


def selected_point(page: MapPage) -> None:
    """The picked test image (number input ``map_pick``): its decoding and its nearest neighbours in z."""
    n_max, model, data = page.n_max, page.active.model, page.data
    pick = st.number_input(
        f"Test image (0–{n_max - 1}); click a point on the map to choose one", min_value=0, max_value=n_max - 1,
        value=None, step=1, key=page.key("map_pick"), placeholder="none",
    )  # fmt: skip
    if pick is None:
        st.info("Click a point on the map to decode it and see its nearest neighbours.")
        return
    i = int(pick)
    scale = max(1, -(-140 // model.config.image_shape[1]))
    a, b = st.columns(2)
    with a:
        show(data.test_x[i], caption=f"original #{i} · {_label_of(data, i)}", scale=scale)
    with b:
        show(decode_batches(model, page.codes[i : i + 1])[0], caption="decoding of μ(x)", scale=scale)


def neighbours_strip(page: MapPage) -> None:
    """The picked image's nearest test images in z, one row, each captioned by its number and distance
    (short enough for its picture's width) under a line that counts their labels."""
    pick = page.pick()
    if pick is None:
        return
    nb = maps.neighbour_list(page.codes, pick, NEIGHBOURS)
    st.markdown(f"**{len(nb)} nearest test images in latent space** to #{pick} (ringed on the map where shown)")
    st.caption(_labels_line(page.data, [j for j, _ in nb]))
    scale = max(1, math.ceil(TILE / page.active.model.config.image_shape[2]))
    for col, (j, d) in zip(st.columns(NEIGHBOURS), nb):
        with col:
            show(page.data.test_x[j], caption=f"#{j} · d={d:.2f}", scale=scale)


def uploads_panel(page: MapPage, ups: maps.Uploads) -> None:
    """Each upload as preprocessed, its decoding, and the test images nearest to it in z."""
    st.subheader("Your uploads")
    model, data = page.active.model, page.data
    dec = decode_batches(model, ups.codes)
    near = maps.neighbours(page.codes, ups.codes, UPLOAD_NEIGHBOURS)
    scale = max(1, math.ceil(TILE / model.config.image_shape[2]))
    for u, name in enumerate(ups.names):
        st.markdown(f"**★{u + 1}** {name}")  # the number a crowded star shows on the map
        cols = st.columns([1, 1, 5])
        with cols[0]:
            show(ups.images[u], caption="preprocessed", scale=3)
        with cols[1]:
            show(dec[u], caption="decoding of μ(x)", scale=3)
        with cols[2]:
            st.caption(f"nearest test images: {_labels_line(data, near[u].tolist())}")
            for c, j in zip(st.columns(len(near[u])), near[u].tolist()):
                with c:
                    show(data.test_x[j], caption=f"#{j}", scale=scale)


def manifold_section(page: MapPage) -> None:
    """The decoded manifold of a 2-D latent, with its grid-size slider ``map_grid_n``."""
    st.subheader("The decoded manifold")
    g1, g2 = st.columns([1, 3])
    k = g1.slider(
        "Grid size n (n × n images)", 5, 30, 15, key="map_grid_n",
        help="Codes on the Gaussian inverse-CDF grid from the 5 % to the 95 % quantile in each dimension.",
    )  # fmt: skip
    grid = _manifold(page.model_key, k, page.active.model)
    with g2:
        show(
            grid,
            caption=f"{dim_label(0)} grows to the right, {dim_label(1)} upward (the dashed square on the raw map)",
            scale=max(1, math.ceil(420 / grid.shape[-1])),
        )
    lo, hi = maps.GRID_EXTENT
    g1.caption(f"{k * k} codes $z = (\\Phi^{{-1}}(p_1), \\Phi^{{-1}}(p_2))$, $p$ from {lo:g} to {hi:g}.")
