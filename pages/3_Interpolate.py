"""Interpolate: walk from one image to another in latent space — the VAE, the AE and a cross-fade."""

import math

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from ui.common import codes_of, explain, page_header, partner
from vae.explore import (
    crossfade,
    estimate_phase,
    gif_bytes,
    interpolate,
    moon_pair,
    nearest,
    phase_name,
    pixel_distance,
    png_bytes,
    prior_log_density,
    strip,
)
from vae.images import SUFFIXES, ImageError, preprocess, to_pil

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
        up = st.file_uploader("Image", type=list(SUFFIXES), key=f"ip_{side}_upload")
        if up is None:
            st.info("Upload an image to use it as this end.")
            return None
        try:
            x = preprocess(
                up.getvalue(),
                cfg.image_shape,
                style=active.ckpt.dataset.get("style", "plain"),
                dark_background=active.ckpt.dataset.get("dark_background", True),
            ).tensor
        except ImageError as e:
            st.error(f"{up.name}: {e}")
            return None
        return x, up.name
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

ca, cb = st.columns(2)
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
models = [(f"{cfg.kind.upper()} · {active.name}", active.name, active.ckpt)]
other = partner(active, "ae" if cfg.kind == "vae" else "vae")
if other is not None:
    models.append((f"{other[1].config.kind.upper()} · {other[0]}", other[0], other[1]))
    models.sort(key=lambda m: m[2].config.kind != "vae")  # the VAE's row first
else:
    st.caption("No checkpoint of the other kind on this data set was found, so only one model's path is shown.")

xa, xb = end_a[0], end_b[0]
rows: list[tuple[str, torch.Tensor]] = []
metrics: dict[str, dict[str, np.ndarray]] = {}
train_x = data.train_x[:5000]
with st.spinner("Decoding the paths…"), torch.no_grad():
    for title, name, ckpt in models:
        m = ckpt.model
        za = m.encode(xa[None].to(m.device))[0][0].cpu()
        zb = m.encode(xb[None].to(m.device))[0][0].cpu()
        z = interpolate(za, zb, steps, method)
        rows.append((title, m.decode(z.to(m.device)).cpu()))
        codes = codes_of(f"{name}:{id(ckpt)}:train", m, train_x)
        metrics[title] = {
            "log N(z; 0, I)": prior_log_density(z).numpy(),
            "distance to nearest training code": nearest(codes, z)[0][:, 0].numpy(),
        }
    rows.append(("pixel cross-fade", crossfade(xa, xb, steps)))

ref_phase = data.extra.get("train_phase")
for title, frames in rows:
    st.markdown(f"**{title}**")
    st.image(strip(frames, scale=3), output_format="PNG")
    if is_moons and ref_phase is not None:  # one nearest-neighbour search gives phase and distance
        est, dist = estimate_phase(frames, train_x, ref_phase[: len(train_x)])
    else:
        dist = pixel_distance(frames, train_x)
    metrics.setdefault(title, {})["pixel distance to nearest training image"] = dist.numpy()
    if is_moons and ref_phase is not None:
        st.caption(
            " · ".join(
                f"{phase_name(a)} {math.degrees(a):.0f}° (d={r:.3f})" for a, r in zip(est.tolist(), dist.tolist())
            )
        )

fig = go.Figure()
chart_rows = [(t, k, v) for t, d in metrics.items() for k, v in d.items()]
if chart_rows:
    kinds = sorted({k for _, k, _ in chart_rows})
    pick = st.selectbox(
        "How far is each step from the data?",
        kinds,
        key="ip_metric",
        index=kinds.index("pixel distance to nearest training image"),
    )
    for t, k, v in chart_rows:
        if k == pick:
            fig.add_trace(go.Scatter(x=list(range(steps)), y=v, mode="lines+markers", name=t))
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="step", yaxis_title=pick)
    st.plotly_chart(fig, key="ip_chart")

vae_frames = rows[0][1]
d1, d2 = st.columns(2)
d1.download_button(
    "Download PNG strip", png_bytes(strip(vae_frames, scale=4)), "interpolation.png", "image/png", key="ip_download_png"
)
d2.download_button(
    "Download GIF", gif_bytes(vae_frames, scale=6), "interpolation.gif", "image/gif", key="ip_download_gif"
)

explain(
    r"""
Both models encode A and B to codes $z_A, z_B$ (the posterior means $\mu$) and decode the points in between:
linearly, $z_t = (1-t)\,z_A + t\,z_B$, or along a great circle (*slerp*). The bottom row blends pixels instead.

An **AE** only learns to reconstruct its training codes: nothing tells the decoder what to do *between* them, so the
midpoint of a full moon and a half moon can decode to nonsense. A **VAE** is trained on noisy codes,
$z = \mu + \sigma \odot \varepsilon,\ \varepsilon \sim \mathcal N(0, I)$ (the reparameterization), and the KL term
$\mathrm{KL}(q(z\mid x)\,\|\,\mathcal N(0, I))$ keeps those noise clouds overlapping. Codes in the overlap must decode to
something like *both* moons — a moon in between, a gibbous moon. On moons each step shows the estimated phase
(from the 5 nearest real moons) and its RMS pixel distance $d$ to the nearest training image: small $d$ means the
frame looks like real data. The chart shows, per path, that distance, the prior log-density $\log \mathcal N(z; 0, I)$ of each
code, and its distance to the nearest encoded training image.
"""
)
