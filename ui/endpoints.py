"""The Interpolate page's end pickers: a test image (by label and index), an upload, or a random test image.

Every key is scoped to the model (``ui.state.scoped``): the labels, the indices and the upload's
preprocessing all depend on its data set, so another model shows its own choices, never these.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
import torch

from ui.common import Active, upload_images
from ui.state import scoped
from vae.images import ImageError, preprocess, to_pil

SOURCES = ["data set", "upload", "random"]


@dataclass
class End:
    """One end of the path: the image (C, H, W) and its caption."""

    x: torch.Tensor
    caption: str


def _from_data(active: Active, side: str, default_idx: int) -> End | None:
    data = active.data
    labels = data.label_names
    label = st.selectbox(
        "Label",
        range(len(labels)),
        index=int(data.test_y[default_idx]),
        format_func=lambda i: labels[i],
        key=scoped(f"ip_{side}_label", active),
    )
    idxs = torch.nonzero(data.test_y == label).flatten().tolist()
    if not idxs:
        st.warning(f"No test image is labelled {labels[label]}.")
        return None
    pos = idxs.index(default_idx) if default_idx in idxs else 0
    key = scoped(f"ip_{side}_idx", active, label)  # the range depends on the label too
    k = st.number_input(f"Which one (0–{len(idxs) - 1})", 0, len(idxs) - 1, pos, key=key)
    i = idxs[int(k)]
    return End(data.test_x[i], f"{labels[label]} #{i}")


def _from_upload(active: Active, side: str) -> End | None:
    files = upload_images("Image", key=scoped(f"ip_{side}_upload", active), multiple=False)
    if not files:
        st.info("Upload an image to use it as this end.")
        return None
    name, raw = files[0]
    style, dark = active.upload_style
    try:
        x = preprocess(raw, active.config.image_shape, style=style, dark_background=dark).tensor
    except ImageError as e:
        st.error(f"{name}: {e}")
        return None
    return End(x, name)


def _at_random(active: Active, side: str) -> End:
    data = active.data
    seed_key = scoped(f"ip_{side}_seed", active)
    if st.button("New random image", key=scoped(f"ip_{side}_reroll", active)):
        st.session_state[seed_key] = st.session_state.get(seed_key, 0) + 1
    seed = st.session_state.get(seed_key, 0) * 2 + (side == "b")
    i = int(torch.randint(len(data.test_x), (1,), generator=torch.Generator().manual_seed(seed)))
    return End(data.test_x[i], f"{data.label_names[int(data.test_y[i])]} #{i}")


def endpoint(active: Active, side: str, default_idx: int, title: str) -> End | None:
    """The picker of one end ("a" or "b") under ``title``, and the image it picked (shown), or None."""
    st.markdown(f"**{title}**")
    src = st.radio("Source", SOURCES, key=scoped(f"ip_{side}_src", active), horizontal=True)
    if src == "data set":
        end = _from_data(active, side, default_idx)
    elif src == "upload":
        end = _from_upload(active, side)
    else:
        end = _at_random(active, side)
    if end is not None:
        st.image(to_pil(end.x, scale=4), caption=end.caption, output_format="PNG")
    return end
