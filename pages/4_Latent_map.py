"""Latent map: the encoded test set in 2-D (raw codes, PCA, t-SNE); click a point to decode it;
uploads appear as stars; for a 2-D latent, the decoded manifold grid."""

import hashlib
import math

import streamlit as st
import torch

from ui.common import cache_key, codes_of, explain, page_header, show
from vae import maps
from vae.explore import nearest
from vae.images import SUFFIXES, limit_total

NEIGHBOURS = 8
GRID_EXTENT = (0.05, 0.95)  # the manifold grid's quantiles of N(0, 1)

EXPLANATION = r"""
Each dot is one **test image** $x$, placed by its code: the **posterior mean** $\mu_\phi(x)$ of the encoder's
$q_\phi(z \mid x) = \mathcal N\big(\mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x)\big)$ (for an AE, its one
deterministic code). Colours are the true labels, which the model never saw: classes that come out as separate
islands were separated by the model on its own.

The codes live in $\mathbb R^{D}$; the map needs two coordinates.

- **Raw codes** (2-D latents only): the plane of $(z_1, z_2)$ itself. The dashed square spans the 5 % to 95 %
  quantiles of the prior in each coordinate, the area the **manifold grid** below decodes: it sets
  $z = (\Phi^{-1}(p_1), \Phi^{-1}(p_2))$ on an even grid of probabilities $p$, so equal steps carry equal prior
  mass (Kingma & Welling 2013, fig. 4).
- **PCA** is a *linear* projection, $y = W^\top(\mu - \bar\mu)$ with $W$ the two leading eigenvectors of the codes'
  covariance: distances and straight lines survive (shrunk), but two classes can overlap on the map although
  they are apart in the dimensions it drops.
- **t-SNE** (van der Maaten & Hinton 2008) places points so that neighbours in $\mathbb R^{D}$ stay neighbours:
  it matches $p_{ij} \propto \exp(-\lVert\mu_i - \mu_j\rVert^2 / 2\sigma_i^2)$ with a heavy-tailed
  $q_{ij} \propto (1 + \lVert y_i - y_j\rVert^2)^{-1}$ by minimising $\mathrm{KL}(P\,\|\,Q)$. It keeps
  **neighbourhoods, not distances**: cluster sizes and the gaps between clusters mean little. It has no formula
  for new points, so an upload is placed at the mean map position of its $k = 10$ nearest test codes in latent space.

Why VAE and AE maps differ: the VAE's objective

$$\mathrm{ELBO}(x) = \mathbb E_{q(z\mid x)}[\log p(x\mid z)] - \mathrm{KL}\big(q(z\mid x)\,\|\,\mathcal N(0, I)\big)$$

pulls every code toward the prior $\mathcal N(0, I)$ and makes it noisy ($z = \mu + \sigma\varepsilon$), so codes fill
a compact ball with no empty gaps and classes sit side by side, even overlapping where images are ambiguous.
An AE has no KL term: its codes can spread out, and classes tend to overlap less — but the space between them
decodes to nothing in particular, which is why sampling from an AE fails.

**Clicking a point** decodes its code $\mu_\phi(x)$: the decoder's mean $\mathbb E[x \mid z = \mu_\phi(x)]$ next to the
original, and the test images whose codes are nearest to it in $\mathbb R^{D}$ (Euclidean).
"""

active = page_header(
    "Latent map", "The encoded test set in 2-D: click a point to decode it, upload images to place them."
)
if active is None:
    explain(EXPLANATION)
    st.stop()
if active.data is None:
    st.warning(
        "This model's data set is not available here, so there is no test set to draw."
        + (f" ({active.data_note})" if active.data_note else "")
        + " Pick another model in the sidebar."
    )
    explain(EXPLANATION)
    st.stop()

model, cfg, data = active.model, active.config, active.data
D = cfg.latent_dim
names = [str(s) for s in data.label_names]
model_key = cache_key(active)
all_codes = codes_of(f"{model_key}:test", model, data.test_x)[: maps.MAX_POINTS]  # (N, D), cached per checkpoint
n_max = len(all_codes)
labels_all = data.test_y[:n_max].numpy()

# Session values survive page and model changes. A new model starts from its own defaults (raw codes for
# a 2-D latent, else PCA: never an unasked-for t-SNE) and no picked image; other values are kept if valid.
methods = maps.methods_for(D)
n_min = min(50, n_max)
if st.session_state.get("map_model") != model_key:
    st.session_state["map_model"] = model_key
    st.session_state["map_method"] = methods[0]
    st.session_state["map_pick"] = None
if st.session_state.get("map_method") not in methods:
    st.session_state["map_method"] = methods[0]
if "map_n" in st.session_state and not n_min <= st.session_state["map_n"] <= n_max:
    del st.session_state["map_n"]
pick = st.session_state.get("map_pick")
if pick is not None and not 0 <= pick < n_max:
    st.session_state["map_pick"] = None

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
uploaded = c3.file_uploader(
    "Place your own images on the map",
    type=list(SUFFIXES),
    accept_multiple_files=True,
    key="map_upload",
    help="Each image is preprocessed like the training data and encoded to its posterior mean.",
)

codes = all_codes[:n].numpy()
labels = labels_all[:n]

# --------------------------------------------------------------------------- uploads


@st.cache_resource(show_spinner="Decoding the grid…", max_entries=16)
def _manifold(model_key: str, k: int, _model) -> torch.Tensor:
    """The k x k decoded grid (up to 900 decodes): once per model and size, not on every click."""
    return maps.manifold_image(_model, k, *GRID_EXTENT)


@st.cache_resource(show_spinner=False, max_entries=32)
def _encode_uploads(model_key: str, digests: tuple, style: str, dark: bool, _files, _model) -> maps.Uploads:
    """Uploads preprocessed and encoded once per model and set of files (not again on every click)."""
    return maps.encode_uploads(_files, _model, style=style, dark_background=dark)


ups = maps.Uploads([], torch.zeros(0), torch.zeros(0, D), [])
if uploaded:
    files, refused = limit_total([(f.name, f.getvalue()) for f in uploaded])
    for name, why in refused:
        c3.error(f"{name}: {why}")
    digests = tuple((name, hashlib.sha256(b).hexdigest()) for name, b in files)
    style, dark = active.upload_style
    with st.spinner(f"Encoding {len(uploaded)} upload(s)…"):
        ups = _encode_uploads(model_key, digests, style, dark, files, model)
    for name, why in ups.errors:
        c3.error(f"{name}: {why}")

# --------------------------------------------------------------------------- the map


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


lmap, note = None, ""
if method == "tsne":
    previous = st.session_state.get("map_tsne_key")
    lmap, job, tkey = maps.tsne_map_async(codes)
    if previous and previous != tkey:
        maps.RUNNER.cancel(previous)  # this session moved on: do not let an old map hold the CPU
    st.session_state["map_tsne_key"] = tkey
    if lmap is None and job is not None and job.state == "error":
        st.error(f"t-SNE failed: {job.error}")
        if st.button("Try again", key="map_tsne_retry"):
            maps.RUNNER.forget(tkey)
            st.rerun()
    elif lmap is None:
        tsne_progress(tkey, n)
        note = "PCA is shown until t-SNE has finished."
if lmap is None:
    lmap = maps.fit_map(codes, "raw" if method == "raw" else "pca")

try:
    up_xy = lmap.place(ups.codes) if len(ups.names) else None
except ValueError as e:  # cannot happen with codes of this model; never show a traceback anyway
    st.error(f"The uploads cannot be placed on this map: {e}")
    up_xy = None

axes = {"raw": ("z₁", "z₂"), "pca": ("PC 1", "PC 2"), "tsne": ("t-SNE 1", "t-SNE 2")}[lmap.method]
square = tuple(float(v) for v in torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(GRID_EXTENT)))
fig = maps.map_figure(
    lmap.xy,
    labels,
    names,
    upload_xy=up_xy,
    upload_names=ups.names,
    axis_titles=axes,
    square=square if lmap.method == "raw" and D == 2 else None,
)


def _on_select() -> None:
    event = st.session_state.get("map_chart")
    points = event["selection"]["points"] if event else []
    idx = maps.selected_index(points)
    if idx is not None:
        st.session_state["map_pick"] = idx


left, right = st.columns([3, 2])
with left:
    st.caption(
        f"{n:,} test images · {maps.METHOD_NAMES[lmap.method]} of {D}-D {'codes' if model.deterministic else 'posterior means'}"
        + (f" · {len(ups.names)} upload(s) as ★" if len(ups.names) else "")
        + (f" · {note}" if note else "")
    )
    st.plotly_chart(
        fig,
        key="map_chart",
        on_select=_on_select,
        selection_mode="points",
        config={"scrollZoom": True, "displaylogo": False},
    )

# --------------------------------------------------------------------------- the clicked point

with right:
    st.subheader("Selected point")
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
    else:
        i = int(pick)
        z = all_codes[i : i + 1]
        with torch.no_grad():
            decoded = model.decode(z.to(model.device)).cpu()[0]
        side = cfg.image_shape[1]
        scale = max(1, -(-140 // side))
        a, b = st.columns(2)
        with a:
            show(data.test_x[i], caption=f"original #{i} · {names[int(labels_all[i])]}", scale=scale)
        with b:
            show(decoded, caption="decoding of μ(x)", scale=scale)
        dist, idx = nearest(all_codes, z, NEIGHBOURS + 1)
        nb = [(int(j), float(d)) for j, d in zip(idx[0], dist[0]) if int(j) != i][:NEIGHBOURS]
        st.markdown(f"**{len(nb)} nearest test images in latent space**")
        cols = st.columns(4)
        for c, (j, d) in enumerate(nb):
            with cols[c % 4]:
                show(
                    data.test_x[j], caption=f"{names[int(labels_all[j])]} · #{j} · d={d:.2f}", scale=max(1, scale // 2)
                )

# --------------------------------------------------------------------------- uploads, decoded

if len(ups.names):
    st.subheader("Your uploads")
    with torch.no_grad():
        dec = model.decode(ups.codes.to(model.device)).cpu()
    _, up_idx = nearest(all_codes, ups.codes, 5)
    for u, name in enumerate(ups.names):
        cols = st.columns([1, 1, 5])
        with cols[0]:
            show(ups.images[u], caption=f"★ {name} (preprocessed)", scale=3)
        with cols[1]:
            show(dec[u], caption="decoding of μ(x)", scale=3)
        with cols[2]:
            near = [int(j) for j in up_idx[u]]
            inner = st.columns(len(near))
            for c, j in zip(inner, near):
                with c:
                    show(data.test_x[j], caption=f"{names[int(labels_all[j])]} · #{j}", scale=2)

# --------------------------------------------------------------------------- the manifold grid (2-D latents)

if D == 2:
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
    g1.caption(
        f"{k * k} codes $z = (\\Phi^{{-1}}(p_1), \\Phi^{{-1}}(p_2))$, $p$ from {GRID_EXTENT[0]:g} to {GRID_EXTENT[1]:g}."
    )

explain(EXPLANATION)
