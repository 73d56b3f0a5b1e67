"""Latent sliders: one slider per latent dimension, decoded live."""

import numpy as np
import streamlit as st
import torch

from services.explore import decode_batches, gif_bytes, png_bytes, prior_log_density, strip, traversal
from ui.common import cache_key, dimension_kl, explain, page_header, show
from ui.texts import SLIDERS
from vae.images import to_pil

RANGE = 4.0  # sliders span [-4, 4]: beyond that the prior has almost no mass

active = page_header("Latent sliders", "Move each latent dimension and watch the decoder's image change.")
if active is None:
    st.stop()
model, cfg, data = active.model, active.config, active.data
key = cache_key(active)
D = cfg.latent_dim

# Most informative first: the mean KL of each dimension over the test split (for an AE, the
# variance of the code, since an AE has no KL).
if data is not None:
    kl = dimension_kl(key, model, data.test_x[:2000])
else:
    kl = torch.ones(D)
order = torch.argsort(kl, descending=True).tolist()
active_dims = [j for j in order if kl[j] > 0.01] or order
inactive_dims = [j for j in order if j not in active_dims]

# Slider values live in session state under z_<j>; a new model or a new start point resets them.
if st.session_state.get("sl_model") != key:
    st.session_state["sl_model"] = key
    for j in range(D):
        st.session_state[f"z_{j}"] = 0.0


def _set_start() -> None:
    how = st.session_state["sl_start"]
    if how == "prior mean":
        z = torch.zeros(D)
    elif how == "random prior sample":
        st.session_state["sl_seed"] = st.session_state.get("sl_seed", 0) + 1
        z = torch.randn(D, generator=torch.Generator().manual_seed(st.session_state["sl_seed"]))
    else:
        idx = int(st.session_state.get("sl_image", 0))
        with torch.no_grad():
            z = model.encode(data.test_x[idx : idx + 1].to(model.device)).mean[0].cpu()
    z = z.clamp(-RANGE, RANGE)
    for j in range(D):
        st.session_state[f"z_{j}"] = round(float(z[j]), 2)


starts = ["prior mean", "random prior sample"] + (["encoding of a test image"] if data is not None else [])
c1, c2, c3 = st.columns([2, 2, 1])
c1.radio("Start from", starts, key="sl_start", horizontal=True)
if data is not None and st.session_state.get("sl_start") == "encoding of a test image":
    c2.number_input(f"Test image (0–{len(data.test_x) - 1})", 0, len(data.test_x) - 1, 0, key="sl_image")
c3.button("Apply", key="sl_apply", on_click=_set_start, type="primary")

for j in range(D):
    st.session_state.setdefault(f"z_{j}", 0.0)


def _slider(j: int) -> None:
    label = f"z{j}  ·  KL {kl[j]:.2f} nats" if not model.deterministic else f"z{j}  ·  var {kl[j]:.2f}"
    st.slider(label, -RANGE, RANGE, step=0.05, key=f"z_{j}")


@st.fragment
def sliders_and_image() -> None:
    """Only this part re-runs when a slider moves: read the sliders, decode, show."""
    left, right = st.columns([3, 2])
    with left:
        for j in active_dims:
            _slider(j)
        if inactive_dims:
            with st.expander(f"{len(inactive_dims)} inactive dimensions (KL ≤ 0.01 nats: the decoder ignores them)"):
                for j in inactive_dims:
                    _slider(j)
    z = torch.tensor([[st.session_state[f"z_{j}"] for j in range(D)]], dtype=torch.float32)
    with torch.no_grad():
        x = model.decode(z.to(model.device))[0].cpu()
    with right:
        side = cfg.image_shape[1]
        show(x, caption="decoded mean of p(x|z)", scale=max(1, -(-320 // side)))
        st.download_button(
            "Download PNG",
            lambda: png_bytes(to_pil(x, scale=8)),  # built only when clicked: keeps the slider loop fast
            "decoded.png",
            "image/png",
            key="sl_download_png",
        )
        st.caption(f"log N(z; 0, I) = {float(prior_log_density(z)[0]):.2f} nats")

    st.subheader("Traversal")
    t1, t2 = st.columns([2, 1])
    dim = t1.selectbox("Dimension", order, format_func=lambda j: f"z{j} (KL {kl[j]:.2f})", key="sl_trav_dim")
    n = t2.slider("Steps", 3, 15, 9, key="sl_trav_steps")
    values = np.linspace(-3, 3, n)
    frames = decode_batches(model, traversal(z[0], int(dim), values))  # one dimension swept around z
    st.image(strip(frames, scale=3), caption=" · ".join(f"{v:+.1f}" for v in values), output_format="PNG")
    st.download_button(
        "Download GIF",
        lambda: gif_bytes(frames, scale=6),
        f"traversal-z{dim}.gif",
        "image/gif",
        key="sl_download_gif",
    )


sliders_and_image()

explain(SLIDERS)
