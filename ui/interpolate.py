"""Streamlit glue of the Interpolate page's scrubber: the live view (ui/components/interpolate.js)
where the browser can decode, else a t slider decoded on the server; and the frame at the chosen t."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st
import torch

from services.explore import decode_batches, path_at, pixel_distance
from services.live_views import released_t, scrub_payload
from ui.common import show
from ui.live import component, decoder_for, fallback_note
from ui.moons import fits
from vae.checkpoint import Checkpoint

# (title, model key, checkpoint, the page's path z (S, D) from z_A to z_B) per model shown
ModelPath = tuple[str, str, Checkpoint, torch.Tensor]


def _frames_at(paths: Sequence[ModelPath], t: float, method: str) -> list[torch.Tensor]:
    """Each model's decoding (C, H, W) of the code at t on its path."""
    return [decode_batches(ckpt.model, path_at(z[0], z[-1], [t], method))[0] for _, _, ckpt, z in paths]


def _measure(
    paths: Sequence[ModelPath], t: float, method: str, train_x: torch.Tensor, moons: bool, images: str
) -> None:
    """The caption of the frame at t: each model's distance to the data's nearest ``images`` (training or
    test) and, on moons, the moon that fits it."""
    frames = _frames_at(paths, t, method)
    moon_fits = fits([x[None] for x in frames]) if moons else [None] * len(frames)
    parts = []
    for (title, *_), x, fit in zip(paths, frames, moon_fits):
        text = f"d={float(pixel_distance(x[None], train_x)[0]):.3f}"
        parts.append(f"{title}: " + (f"{fit.caption(0)}, {text}" if fit is not None else text))
    st.caption(f"At t = {t:.3f}: " + " · ".join(parts) + f" (d: pixel distance to the nearest {images} image)")


def scrubber(
    paths: Sequence[ModelPath], method: str, train_x: torch.Tensor, moons: bool = False, images: str = "training"
) -> None:
    """Scrub t along every model's path: decoded live in the browser, measured here on release against
    ``train_x``, the data's ``images`` (training, or test where there are no training images)."""
    st.markdown("**Scrub the path**")
    decoders = [decoder_for(key, ckpt.model) for _, key, ckpt, _ in paths]
    off = next((d for d in decoders if not d.available), None)
    if off is None:
        st.caption("Drag t from A to B: each model decodes the code at t in your browser as you move.")
        payload = scrub_payload(
            [(title, d.data(), z[0], z[-1]) for (title, _, _, z), d in zip(paths, decoders)], method
        )
        result = component("interpolate")(key="ip_scrub", data=payload, default={"t": None}, on_t_change=lambda: None)
        t = released_t(result, payload)
    else:
        fallback_note(off)
        t = st.slider("t along the path from A (0) to B (1)", 0.0, 1.0, 0.5, 0.01, key="ip_t")
        side = int(paths[0][2].config.image_shape[-1])
        for col, (title, *_), x in zip(st.columns(len(paths)), paths, _frames_at(paths, t, method)):
            with col:
                show(x, caption=f"{title} · t = {t:.2f}", scale=max(1, -(-196 // side)))
    if t is not None:
        _measure(paths, t, method, train_x, moons, images)
