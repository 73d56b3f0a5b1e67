"""Streamlit glue of the Interpolate page: the models walked, their paths measured against the data
(services.explore), the strips, the distance chart, the downloads, and the scrubber: the live view
(ui/components/interpolate.js) where the browser can decode, else a t slider decoded on the server."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import streamlit as st
import torch

from services.explore import (
    REFERENCE_LIMIT,
    Codes,
    PathRow,
    Reference,
    decode_batches,
    encoded,
    gif_bytes,
    path_at,
    paths_between,
    pixel_distance,
    pixel_metric,
    png_bytes,
    reference_for,
    strip,
)
from services.live_views import released_t, scrub_payload
from ui.common import Active, cache_key, partner, show
from ui.figures import distance_figure
from ui.live import component, decoder_for, fallback_note
from ui.moons import fits
from ui.state import scoped
from vae.checkpoint import Checkpoint

CROSSFADE = "pixel cross-fade"

# (title, model key, checkpoint, the page's path z (S, D) from z_A to z_B) per model shown
ModelPath = tuple[str, str, Checkpoint, torch.Tensor]


@dataclass
class Interpolation:
    """Everything the page shows below the ends: one row per model and the cross-fade."""

    rows: list[PathRow]
    paths: list[ModelPath]  # the models' rows, for the scrubber and the moon plane
    codes: list[Codes]  # each model's codes of the reference images
    ref: Reference
    fits: list  # a services.moons.MoonFit per row on moons, else None per row


def path_settings() -> tuple[int, str]:
    """The number of steps and the path's kind (nothing model-specific: plain keys)."""
    c1, c2 = st.columns(2)
    steps = c1.slider("Steps", 2, 20, 9, key="ip_steps")
    help = "slerp follows a great circle, keeping |z| like the prior's typical shell."
    method = c2.radio("Path", ["linear", "slerp"], key="ip_method", horizontal=True, help=help)
    return steps, method


def path_models(active: Active) -> list[Active]:
    """The active model and its partner of the other kind on the same data (the VAE first), if any."""
    other = partner(active, "ae" if active.config.kind == "vae" else "vae")
    if other is None:
        st.caption("No checkpoint of the other kind on this data set was found, so only one model's path is shown.")
        return [active]
    return sorted([active, other], key=lambda m: m.config.kind != "vae")


@st.cache_resource(show_spinner=False, max_entries=32)
def _codes(key: str, _model, _x: torch.Tensor) -> Codes:
    """services.explore.encoded (on disk), kept in memory too."""
    return encoded(key, _model, _x)


def _reference_note(ref: Reference) -> None:
    if ref.split == "test":
        st.caption(
            "This model's training images are not on this machine: distances are to the nearest test image"
            " other than A and B, so that both ends are measured alike."
        )


def compute(
    active: Active, models: Sequence[Active], xa: torch.Tensor, xb: torch.Tensor, steps: int, method: str, moons: bool
) -> Interpolation:
    """The paths from xa to xb, measured against the reference images, with a spinner naming each step."""
    data = active.data
    ref = reference_for(data, torch.stack([xa, xb]))
    _reference_note(ref)
    pool = data.neighbours()[0][:REFERENCE_LIMIT]
    codes = []
    for m in models:
        with st.spinner(f"Encoding {len(pool):,} {ref.images} images with {m.name}…"):
            c = _codes(f"{m.key}|{cache_key(active)}|{ref.split}", m.model, pool)
        codes.append(Codes(c.mean[ref.index], None if c.std is None else c.std[ref.index]))
    titles = [f"{m.config.kind.upper()} · {m.name}" for m in models]
    with st.spinner("Decoding the paths and measuring each step's distance to the data…"):
        trio = [(t, m.model, c.mean) for t, m, c in zip(titles, models, codes)]
        rows = paths_between(trio, xa, xb, steps, method, ref, CROSSFADE)
    paths = [(t, m.key, m.ckpt, r.z) for t, m, r in zip(titles, models, rows)]
    with st.spinner("Fitting a moon to every frame…"):
        row_fits = fits([r.frames for r in rows]) if moons else [None] * len(rows)
    return Interpolation(rows, paths, codes, ref, row_fits)


def strips(result: Interpolation, caption) -> None:
    """One strip a row; under it ``caption(fit)`` of its moon fits where there are fits."""
    for row, fit in zip(result.rows, result.fits):
        st.markdown(f"**{row.title}**")
        st.image(strip(row.frames, scale=3), output_format="PNG")
        if fit is not None:
            st.caption(caption(fit))


def distance_chart(active: Active, result: Interpolation) -> None:
    """The chart of one measure (picked) along every row's path."""
    kinds = sorted({k for r in result.rows for k in r.metrics})
    pick = st.selectbox(
        "How far is each step from the data?",
        kinds,
        key=scoped("ip_metric", active),  # the measures' names depend on the model's kind and data
        index=kinds.index(pixel_metric(result.ref.images)),
    )
    series = [(r.title, r.metrics[pick]) for r in result.rows if pick in r.metrics]
    st.plotly_chart(distance_figure(series, pick), key="ip_chart")


def downloads(frames: torch.Tensor) -> None:
    """The first row's strip as PNG and as a looping GIF."""
    d1, d2 = st.columns(2)
    png = png_bytes(strip(frames, scale=4))
    d1.download_button("Download PNG strip", png, "interpolation.png", "image/png", key="ip_download_png")
    gif = gif_bytes(frames, scale=6)
    d2.download_button("Download GIF", gif, "interpolation.gif", "image/gif", key="ip_download_gif")


# --------------------------------------------------------------------------- the scrubber


def _frames_at(paths: Sequence[ModelPath], t: float, method: str) -> list[torch.Tensor]:
    """Each model's decoding (C, H, W) of the code at t on its path."""
    return [decode_batches(ckpt.model, path_at(z[0], z[-1], [t], method))[0] for _, _, ckpt, z in paths]


def _measure(paths: Sequence[ModelPath], t: float, method: str, ref: Reference, moons: bool) -> None:
    """The caption of the frame at t: each model's distance to the reference's nearest image and, on
    moons, the moon that fits it."""
    frames = _frames_at(paths, t, method)
    moon_fits = fits([x[None] for x in frames]) if moons else [None] * len(frames)
    parts = []
    for (title, *_), x, fit in zip(paths, frames, moon_fits):
        text = f"d={float(pixel_distance(x[None], ref.x)[0]):.3f}"
        parts.append(f"{title}: " + (f"{fit.caption(0)}, {text}" if fit is not None else text))
    st.caption(f"At t = {t:.3f}: " + " · ".join(parts) + f" (d: pixel distance to the nearest {ref.images} image)")


def scrubber(result: Interpolation, method: str, moons: bool = False) -> None:
    """Scrub t along every model's path: decoded live in the browser, measured here on release against
    the reference images."""
    paths = result.paths
    st.markdown("**Scrub the path**")
    with st.spinner("Exporting the decoders for your browser…"):
        decoders = [decoder_for(key, ckpt.model) for _, key, ckpt, _ in paths]
    off = next((d for d in decoders if not d.available), None)
    if off is None:
        st.caption("Drag t from A to B: each model decodes the code at t in your browser as you move.")
        payload = scrub_payload(
            [(title, d.data(), z[0], z[-1]) for (title, _, _, z), d in zip(paths, decoders)], method
        )
        state = component("interpolate")(key="ip_scrub", data=payload, default={"t": None}, on_t_change=lambda: None)
        t = released_t(state, payload)
    else:
        fallback_note(off)
        t = st.slider("t along the path from A (0) to B (1)", 0.0, 1.0, 0.5, 0.01, key="ip_t")
        side = int(paths[0][2].config.image_shape[-1])
        for col, (title, *_), x in zip(st.columns(len(paths)), paths, _frames_at(paths, t, method)):
            with col:
                show(x, caption=f"{title} · t = {t:.2f}", scale=max(1, -(-196 // side)))
    if t is not None:
        _measure(paths, t, method, result.ref, moons)
