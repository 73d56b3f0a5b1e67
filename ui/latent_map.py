"""Streamlit glue of the Latent map page: cached uploads and grid, the t-SNE progress, the panels."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import streamlit as st
import torch

from services import maps
from services.explore import decode_batches
from services.live import LiveDecoder
from services.live_views import ellipse_payload, map_payload, sprite_sheet
from ui.common import show
from ui.figures import palette, selected_index
from ui.live import component
from vae.data import Dataset

NEIGHBOURS = 8  # nearest test images shown for a picked point
UPLOAD_NEIGHBOURS = 5  # ... and for each upload


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
def tsne_progress(key: str, n: int) -> None:
    """Polls the background t-SNE; reruns the page once it has finished."""
    job = maps.RUNNER.get(key)
    if job is None or job.done:
        st.rerun()
    waiting = job.state == "queued"
    text = (
        "t-SNE waits for another map to finish…"
        if waiting
        else f"Computing t-SNE of {n:,} codes in the background: {job.message} ({job.elapsed:.0f} s)"
    )
    st.progress(job.progress, text=text)


def tsne_status(view: maps.MapView, n: int) -> str:
    """Shows a failed t-SNE (with a retry button) or its progress; returns a note for the caption."""
    if view.error is not None:
        st.error(f"t-SNE failed: {view.error}")
        if st.button("Try again", key="map_tsne_retry"):
            maps.RUNNER.forget(view.tsne_key)
            st.rerun()
    elif view.waiting:
        tsne_progress(view.tsne_key, n)
        return "PCA is shown until t-SNE has finished."
    return ""


def on_select() -> None:
    """The map's click callback: a clicked test point becomes the picked image."""
    event = st.session_state.get("map_chart")
    idx = selected_index(event["selection"]["points"] if event else [])
    if idx is not None:
        st.session_state["map_pick"] = idx


def on_live_pick() -> None:
    """The live map's click trigger: the clicked test point becomes the picked image."""
    got = (st.session_state.get("map_live") or {}).get("pick")
    if isinstance(got, int) and got >= 0:
        st.session_state["map_pick"] = got


@st.cache_resource(show_spinner=False, max_entries=8)
def _sprite(key: str, _images: torch.Tensor) -> dict:
    """The thumbnails as one PNG sprite sheet, once per model, number of points and set of uploads."""
    return sprite_sheet(_images)


@st.cache_resource(show_spinner="Encoding σ of the test set…", max_entries=16)
def _stds(key: str, _model, _x: torch.Tensor) -> np.ndarray | None:
    """σ (N, D) of q(z|x) for the test images, once per checkpoint (None for an AE)."""
    return maps.encode_std(_model, _x)


def ellipses(model_key: str, model, data: Dataset, lmap: maps.LatentMap) -> dict | None:
    """The posterior ellipses to draw (services.live_views.ellipse_payload) for the picked point
    (``map_pick``) and, with the checkbox ``map_clouds``, for every shown point; or a caption saying why none."""
    if model.deterministic:
        st.caption("An AE's code is a point, not a distribution: it has no σ, so there are no posterior ellipses.")
        return None
    if lmap.method == "tsne":
        st.caption("t-SNE is no linear projection, so q(z|x) has no ellipse on it: pick raw or PCA to see them.")
        return None
    clouds = st.checkbox(
        "Every point's ±1σ ellipse (the noise clouds)",
        key="map_clouds",
        help="q(z|x) of each shown image: where the overlapping clouds cover the plane, codes decode to something.",
    )
    std = _stds(f"{model_key}:test", model, data.test_x[: maps.MAX_POINTS])
    pick = st.session_state.get("map_pick")
    return ellipse_payload(lmap, std, None if pick is None else int(pick), clouds)


def live_map(
    decoder: LiveDecoder,
    key: str,
    lmap: maps.LatentMap,
    labels: np.ndarray,
    data: Dataset,
    ups: maps.Uploads,
    up_xy: np.ndarray | None,
    axis_titles: tuple[str, str],
    square: tuple[float, float] | None,
    ells: dict | None = None,
) -> None:
    """The map as a live view (ui/components/latent_map.js): points xy (N, 2) with labels (N,), uploads
    at up_xy (M, 2); hovering decodes in the browser, a click picks a test image (``map_pick``).
    ``key`` names the model, for the sprite sheet's cache."""
    n = len(lmap.xy)
    images = torch.cat([data.test_x[:n], ups.images.reshape(-1, *data.test_x.shape[1:])])
    names = [str(s) for s in data.label_names]
    payload = map_payload(
        lmap,
        labels,
        names,
        palette(len(names)),
        _sprite(f"{key}:{n}:{hashlib.sha256(ups.images.numpy().tobytes()).hexdigest()}", images),
        upload_xy=up_xy if up_xy is not None and len(ups.names) else None,
        upload_names=ups.names,
        axis_titles=axis_titles,
        square=square,
        ellipses=ells,
    )
    component("latent_map")(key="map_live", data={"decoder": decoder.data(), **payload}, on_pick_change=on_live_pick)


def _caption(data: Dataset, j: int) -> str:
    return data.label_names[int(data.test_y[j])]


def selected_point(model, data: Dataset, codes: torch.Tensor) -> None:
    """The picked test image (number input ``map_pick``): its decoding and its nearest neighbours in z."""
    n_max = len(codes)
    pick = st.number_input(
        f"Test image (0–{n_max - 1}); click a point on the map to choose one",
        min_value=0,
        max_value=n_max - 1,
        value=None,
        step=1,
        key="map_pick",
        placeholder="click a point on the map",
    )
    if pick is None:
        st.info("Click a point on the map to decode it and see its nearest neighbours.")
        return
    i = int(pick)
    decoded = decode_batches(model, codes[i : i + 1])[0]
    scale = max(1, -(-140 // model.config.image_shape[1]))
    a, b = st.columns(2)
    with a:
        show(data.test_x[i], caption=f"original #{i} · {_caption(data, i)}", scale=scale)
    with b:
        show(decoded, caption="decoding of μ(x)", scale=scale)
    nb = maps.neighbour_list(codes, i, NEIGHBOURS)
    st.markdown(f"**{len(nb)} nearest test images in latent space**")
    cols = st.columns(4)
    for c, (j, d) in enumerate(nb):
        with cols[c % 4]:
            show(data.test_x[j], caption=f"{_caption(data, j)} · #{j} · d={d:.2f}", scale=max(1, scale // 2))


def uploads_panel(model, data: Dataset, codes: torch.Tensor, ups: maps.Uploads) -> None:
    """Each upload as preprocessed, its decoding, and the test images nearest to it in z."""
    st.subheader("Your uploads")
    dec = decode_batches(model, ups.codes)
    near = maps.neighbours(codes, ups.codes, UPLOAD_NEIGHBOURS)
    for u, name in enumerate(ups.names):
        cols = st.columns([1, 1, 5])
        with cols[0]:
            show(ups.images[u], caption=f"★ {name} (preprocessed)", scale=3)
        with cols[1]:
            show(dec[u], caption="decoding of μ(x)", scale=3)
        with cols[2]:
            inner = st.columns(len(near[u]))
            for c, j in zip(inner, near[u].tolist()):
                with c:
                    show(data.test_x[j], caption=f"{_caption(data, j)} · #{j}", scale=2)


def manifold_section(model_key: str, model) -> None:
    """The decoded manifold of a 2-D latent, with its grid-size slider ``map_grid_n``."""
    st.subheader("The decoded manifold")
    g1, g2 = st.columns([1, 3])
    k = g1.slider(
        "Grid size n (n × n images)",
        5,
        30,
        15,
        key="map_grid_n",
        help="Codes on the Gaussian inverse-CDF grid from the 5 % to the 95 % quantile in each dimension.",
    )
    grid = _manifold(model_key, k, model)
    with g2:
        show(
            grid,
            caption="z₁ grows to the right, z₂ upward (the dashed square on the raw map)",
            scale=max(1, math.ceil(420 / grid.shape[-1])),
        )
    lo, hi = maps.GRID_EXTENT
    g1.caption(f"{k * k} codes $z = (\\Phi^{{-1}}(p_1), \\Phi^{{-1}}(p_2))$, $p$ from {lo:g} to {hi:g}.")
