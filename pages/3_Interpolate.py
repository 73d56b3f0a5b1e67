"""Interpolate: walk from one image to another in latent space — the VAE, the AE and a cross-fade; a
scrubber beside A and B decodes any t in the browser as it is dragged (ui/components/interpolate.js)."""

import numpy as np
import streamlit as st
import torch

from services.explore import (
    crossfade,
    gif_bytes,
    latent_path,
    moon_pair,
    path_metrics,
    pixel_distance,
    png_bytes,
    strip,
)
from ui.common import codes_of, explain, page_header, partner, upload_images
from ui.figures import distance_figure
from ui.interpolate import scrubber
from ui.moons import fits, moon_argument, row_caption
from ui.texts import INTERPOLATE
from vae.images import ImageError, preprocess, to_pil

active = page_header(
    "Interpolate", "Walk between two images in latent space; compare the VAE, the AE and a pixel cross-fade."
)
if active is None:
    st.stop()
if active.data is None:
    st.warning("This model's data set is not available, so there are no images to interpolate between.")
    st.stop()
data, cfg = active.data, active.config
is_moons = data.name == "moons"
labels = data.label_names


def endpoint(side: str, default_idx: int) -> tuple[torch.Tensor, str] | None:
    """One end of the path: a test image (by label and index), an upload, or a random test image."""
    src = st.radio("Source", ["data set", "upload", "random"], key=f"ip_{side}_src", horizontal=True)
    if src == "data set":
        default_label = int(data.test_y[default_idx])
        label = st.selectbox(
            "Label", range(len(labels)), index=default_label, format_func=lambda i: labels[i], key=f"ip_{side}_label"
        )
        idxs = torch.nonzero(data.test_y == label).flatten().tolist()
        if not idxs:
            st.warning(f"No test image is labelled {labels[label]}.")
            return None
        pos = idxs.index(default_idx) if default_idx in idxs else 0
        k = st.number_input(f"Which one (0–{len(idxs) - 1})", 0, len(idxs) - 1, pos, key=f"ip_{side}_idx")
        i = idxs[int(k)]
        return data.test_x[i], f"{labels[label]} #{i}"
    if src == "upload":
        files = upload_images("Image", key=f"ip_{side}_upload", multiple=False)
        if not files:
            st.info("Upload an image to use it as this end.")
            return None
        name, raw = files[0]
        style, dark = active.upload_style
        try:
            x = preprocess(raw, cfg.image_shape, style=style, dark_background=dark).tensor
        except ImageError as e:
            st.error(f"{name}: {e}")
            return None
        return x, name
    if st.button("New random image", key=f"ip_{side}_reroll"):
        st.session_state[f"ip_{side}_seed"] = st.session_state.get(f"ip_{side}_seed", 0) + 1
    seed = st.session_state.get(f"ip_{side}_seed", 0) * 2 + (side == "b")
    i = int(torch.randint(len(data.test_x), (1,), generator=torch.Generator().manual_seed(seed)))
    return data.test_x[i], f"{labels[int(data.test_y[i])]} #{i}"


# The seeds' example on moons: a true full moon and the true half moon most like it.
if is_moons:
    default_a, default_b = moon_pair(data.test_x, data.extra["test_phase"])
else:
    default_a, default_b = 0, int(torch.nonzero(data.test_y != data.test_y[0]).flatten()[0])

ca, cb, cs = st.columns([2, 2, 3], gap="medium")  # cs: the live scrubber, once the paths are known
with ca:
    st.markdown("**Start (A)**")
    end_a = endpoint("a", default_a)
    if end_a:
        st.image(to_pil(end_a[0], scale=4), caption=end_a[1], output_format="PNG")
with cb:
    st.markdown("**End (B)**")
    end_b = endpoint("b", default_b)
    if end_b:
        st.image(to_pil(end_b[0], scale=4), caption=end_b[1], output_format="PNG")
if not (end_a and end_b):
    st.stop()

c1, c2 = st.columns(2)
steps = c1.slider("Steps", 2, 20, 9, key="ip_steps")
method = c2.radio(
    "Path",
    ["linear", "slerp"],
    key="ip_method",
    horizontal=True,
    help="slerp follows a great circle, keeping |z| like the prior's typical shell.",
)

# The models to compare: the active one and its partner of the other kind on the same data.
models = [active]
other = partner(active, "ae" if cfg.kind == "vae" else "vae")
if other is not None:
    models.append(other)
    models.sort(key=lambda m: m.config.kind != "vae")  # the VAE's row first
else:
    st.caption("No checkpoint of the other kind on this data set was found, so only one model's path is shown.")

xa, xb = end_a[0], end_b[0]
rows: list[tuple[str, torch.Tensor]] = []
paths = []  # (title, model key, checkpoint, z (S, D)) for the scrubber
metrics: dict[str, dict[str, np.ndarray]] = {}
# Distances to "the data" use the training images, or the test images where none came (MNIST from vae/assets).
ref_x, split = data.neighbours()
ref_x, images = ref_x[:5000], "training" if split == "train" else "test"
if split == "test":
    st.caption(
        "This model's training images are not on this machine: distances are to the nearest test image"
        " (A and B may be among them)."
    )
with st.spinner("Decoding the paths…"):
    for m in models:
        title, ckpt = f"{m.config.kind.upper()} · {m.name}", m.ckpt
        z, frames = latent_path(ckpt.model, xa, xb, steps, method)
        rows.append((title, frames))
        paths.append((title, m.key, ckpt, z))
        codes = codes_of(f"{m.key}:{split}", ckpt.model, ref_x)
        metrics[title] = path_metrics(z, codes, images, prior=ckpt.config.kind == "vae")
    rows.append(("pixel cross-fade", crossfade(xa, xb, steps)))

with cs:
    scrubber(paths, method, ref_x, is_moons, images)
# On moons each frame gets the phase of the moon that fits it best, and how well one fits.
row_fits = fits([frames for _, frames in rows]) if is_moons else [None] * len(rows)
for (title, frames), fit in zip(rows, row_fits):
    st.markdown(f"**{title}**")
    st.image(strip(frames, scale=3), output_format="PNG")
    metrics.setdefault(title, {})[f"pixel distance to nearest {images} image"] = pixel_distance(frames, ref_x).numpy()
    if fit is not None:
        st.caption(row_caption(fit))

kinds = sorted({k for d in metrics.values() for k in d})
pick = st.selectbox(
    "How far is each step from the data?",
    kinds,
    key="ip_metric",
    index=kinds.index(f"pixel distance to nearest {images} image"),
)
st.plotly_chart(distance_figure([(t, d[pick]) for t, d in metrics.items() if pick in d], pick), key="ip_chart")

if is_moons:
    ref_phase = data.extra[f"{split}_phase"][: len(ref_x)]
    moon_argument([(t, k, c.model, z) for t, k, c, z in paths], row_fits, xa, xb, ref_x, ref_phase)

vae_frames = rows[0][1]
d1, d2 = st.columns(2)
d1.download_button(
    "Download PNG strip", png_bytes(strip(vae_frames, scale=4)), "interpolation.png", "image/png", key="ip_download_png"
)
d2.download_button(
    "Download GIF", gif_bytes(vae_frames, scale=6), "interpolation.gif", "image/gif", key="ip_download_gif"
)

explain(INTERPOLATE)
