"""Streamlit glue of the Latent sliders page: the start point, the live sliders and 2-D pad (decoded in
the browser, ui/components/latent_*.js), the server-side sliders where the browser cannot decode,
the downloads and the traversals.

The page's code lives in session state: ``sl_code`` (D floats) is what Python last heard (a release,
or a new start point); ``sl_start_code`` and ``sl_gen`` say where the live views were mounted, so a
rerun that changes neither leaves them alone (a changed ``data`` would re-mount them mid-gesture).
``sl_band`` holds mu and sigma of q(z|x) (D pairs) when a VAE starts from an encoded image (else None),
and ``sl_draw_seed`` counts the draws z ~ q(z|x).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import streamlit as st
import torch

from services import sliders as sl
from services.explore import decode_batches, gif_bytes, png_bytes, prior_log_density, strip, traversal
from services.live import LiveDecoder
from ui.common import codes_of, dimension_kl
from ui.figures import pad_figure
from ui.live import component, fallback_note
from ui.pictures import labelled_rows
from ui.state import dim_label, scoped
from vae.data import Dataset
from vae.images import tile, to_pil

IMAGE_PX = 320  # the decoded image is shown at least this wide
PAD_PX = 256  # ... and the 2-D pad's plane and image


def start_names(deterministic: bool) -> dict[str, str]:
    """What each start choice is called: a VAE's come from its prior, an AE has none."""
    if deterministic:
        return {"mean": "mean code", "random": "random code", "image": "encoding of a test image"}
    return {"mean": "prior mean", "random": "random prior sample", "image": "encoding of a test image"}


def slider_label(j: int, score: float, deterministic: bool) -> str:
    """z_j (numbered from 1) with how much the model uses it: its KL (a VAE) or its code variance (an AE)."""
    name = dim_label(j)
    return f"{name}  ·  var {score:.2f}" if deterministic else f"{name}  ·  KL {score:.2f} nats"


def fold_note(n: int, deterministic: bool) -> str:
    """The title of the folded inactive dimensions."""
    if deterministic:
        return f"{n} unused dimensions (code variance ≤ {sl.INACTIVE:g}: the decoder barely sees them)"
    return f"{n} inactive dimensions (KL ≤ {sl.INACTIVE:g} nats: the decoder ignores them)"


def band_label(b: sl.Band) -> str:
    """A slider's q(z_j|x) band as it reads beside the slider."""
    return f"μ {b.mu:+.2f} ± {b.sigma:.2f}"


@dataclass
class Setup:
    """What the page shows for one model: the sliders' order, ranges and labels."""

    latent_dim: int
    deterministic: bool
    score: list[float]  # (D,) mean KL in nats, or an AE's code variance
    active: list[int]
    inactive: list[int]
    axes: list[sl.Axis]
    codes: torch.Tensor | None  # (N, D) test codes of an AE (its start points), else None
    owner: str = ""  # the model (ui.common.cache_key): every widget whose choices depend on it is keyed by it

    @property
    def order(self) -> list[int]:
        return self.active + self.inactive

    def key(self, name: str) -> str:
        """The widget key ``name`` for this model (ui.state.scoped): another model is another widget."""
        return scoped(name, self.owner)

    def label(self, j: int) -> str:
        return slider_label(j, self.score[j], self.deterministic)

    def short(self, j: int) -> str:
        """A dimension as a select box names it."""
        return f"{dim_label(j)} ({'var' if self.deterministic else 'KL'} {self.score[j]:.2f})"

    @property
    def caption(self) -> str:
        return "decoded image" if self.deterministic else "decoded mean of p(x|z)"


def setup(key: str, model, data: Dataset | None) -> Setup:
    """Order, ranges and labels of ``model``'s sliders (the test split's statistics are cached per ``key``)."""
    d, det = model.latent_dim, bool(model.deterministic)
    score = dimension_kl(key, model, data.test_x[:2000]) if data is not None else torch.ones(d)
    codes = codes_of(f"{key}:test", model, data.test_x) if det and data is not None else None
    active, inactive = sl.order_dimensions(score)
    axes = sl.slider_axes(d, codes, det)
    return Setup(d, det, [float(s) for s in score], active, inactive, axes, codes, owner=key)


def _restart() -> None:
    st.session_state["sl_restart"] = True


def _draw() -> None:
    """The "Draw z ~ q(z|x)" button: a new seed, and a restart at a draw from the posterior."""
    ss = st.session_state
    ss["sl_draw_seed"] = ss.get("sl_draw_seed", 0) + 1
    ss["sl_drawing"] = ss["sl_restart"] = True


def bands(s: Setup) -> dict[int, sl.Band]:
    """Dimension -> its mu +- sigma band, when the sliders start from an encoded image (a VAE); else empty."""
    band = st.session_state.get("sl_band")
    if not band or len(band) != s.latent_dim:
        return {}
    mean, std = torch.tensor([m for m, _ in band]), torch.tensor([v for _, v in band])
    return {b.j: b for b in sl.posterior_bands(mean, std, s.order)}


def _start(s: Setup, model, data: Dataset | None) -> list[float]:
    ss = st.session_state
    how = ss.get(s.key("sl_start"), "mean")
    image_code = None
    ss["sl_band"] = None  # [[mu, sigma] per dimension] of q(z|x) for an encoded start (a VAE), else None
    drawing = ss.pop("sl_drawing", False)
    if how == "image" and data is not None:
        idx = min(max(int(ss.get(s.key("sl_image"), 0)), 0), len(data.test_x) - 1)
        with torch.no_grad():
            q = model.encode(data.test_x[idx : idx + 1].to(model.device))
        mean, std = q.mean[0].cpu(), q.std[0].cpu()
        image_code = mean
        if not s.deterministic:
            ss["sl_band"] = [[float(m), float(v)] for m, v in zip(mean, std)]
            if drawing:  # z ~ q(z|x), seeded by a counter: each click a new draw, the same one on replay
                z = sl.posterior_draw(mean, std, s.axes, seed=ss.get("sl_draw_seed", 0))
                return [float(v) for v in z]
    elif how == "image":
        how = "mean"
    if how == "random":
        ss["sl_seed"] = ss.get("sl_seed", 0) + 1
    z = sl.start_code(how, s.axes, s.codes, s.deterministic, seed=ss.get("sl_seed", 0), image_code=image_code)
    return [float(v) for v in z]


def settle(key: str, s: Setup, model, data: Dataset | None) -> None:
    """A new model starts from its mean code (its "Start from" is its own widget, at "mean"); a changed
    "Start from" moves the code there at once."""
    ss = st.session_state
    if ss.get("sl_model") != key:
        ss["sl_model"] = key
        ss.pop(s.key("sl_start"), None)
        ss["sl_restart"] = True
    if ss.pop("sl_restart", False) or len(ss.get("sl_code", [])) != s.latent_dim:
        z = _start(s, model, data)
        ss["sl_code"] = ss["sl_start_code"] = z
        ss["sl_gen"] = ss.get("sl_gen", 0) + 1
        for j, v in enumerate(z):  # the server-side sliders, where they are used
            ss[f"z_{j}"] = round(v, 2)


def start_controls(s: Setup, data: Dataset | None) -> None:
    """The "Start from" choice (applied as soon as it changes) and the test image or a new random draw."""
    names = start_names(s.deterministic)
    choices = [c for c in sl.START_CHOICES if c != "image" or data is not None]
    c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
    start = s.key("sl_start")
    c1.radio("Start from", choices, format_func=names.get, key=start, horizontal=True, on_change=_restart)
    how = st.session_state.get(start)
    if how == "image" and data is not None:
        n = len(data.test_x)
        c2.number_input(f"Test image (0–{n - 1})", 0, n - 1, 0, key=s.key("sl_image"), on_change=_restart)
        if s.deterministic:
            st.caption("An autoencoder's code is a point: there is no μ ± σ band to show and nothing to draw.")
        else:
            c3, c4 = st.columns([1, 3], vertical_alignment="center")
            c3.button("Draw z ~ q(z|x)", key="sl_draw", on_click=_draw)
            c4.caption("Each slider shows μ ± σ of q(z|x) (a shaded band, the tick at μ); a draw is z = μ + σ·ε.")
    elif how == "random":
        c2.button("Another sample", key="sl_resample", on_click=_restart)  # a new seed is drawn with each restart


def _axis(s: Setup, j: int) -> dict:
    a = s.axes[j]
    return {"j": j, "lo": a.lo, "hi": a.hi, "step": a.step}


def _released(result, d: int) -> None:
    got = result.get("released")
    z = got.get("z") if isinstance(got, dict) else None
    if isinstance(z, list) and len(z) == d and all(isinstance(v, (int, float)) and math.isfinite(v) for v in z):
        st.session_state["sl_code"] = [float(v) for v in z]


def live_sliders(decoder: LiveDecoder, s: Setup, key: str, shape: tuple[int, int, int]) -> dict:
    """Mount the live sliders; returns the ``data`` shared with the pad. A release stores the code."""
    ss = st.session_state
    side = shape[1]
    base = {**decoder.data(), "token": f"{key}:{ss['sl_gen']}", "start": ss["sl_start_code"]}
    band = bands(s)

    def row(j: int) -> dict:
        b = band.get(j)
        extra = {"mu": b.mu, "sigma": b.sigma, "band": band_label(b)} if b else {}
        return {**_axis(s, j), "label": s.label(j), **extra}

    data = {
        **base,
        "dims": [row(j) for j in s.active],
        "folded": [row(j) for j in s.inactive],
        "fold_note": fold_note(len(s.inactive), s.deterministic),
        "size": side * -(-IMAGE_PX // side),
        "caption": s.caption,
    }
    result = component("latent_sliders")(
        key="sl_live", data=data, on_released_change=lambda: None, on_failed_change=lambda: None
    )
    if result.get("failed"):
        ss["sl_live_failed"] = str(result.get("failed"))
        st.rerun()
    _released(result, s.latent_dim)
    return base


def _pad_dims(s: Setup, key: str, hint: str) -> tuple[int, int] | None:
    """The pad's header and its two dimension pickers (one pair per model); None without a pad."""
    if s.latent_dim < 2:
        return None
    st.subheader("2-D pad")
    order = s.order
    c1, c2, c3 = st.columns([1, 1, 2], vertical_alignment="bottom")
    i = c1.selectbox("Across", order, index=0, format_func=s.short, key=s.key("sl_pad_x"))
    j = c2.selectbox("Up", order, index=1, format_func=s.short, key=s.key("sl_pad_y"))
    c3.caption(hint)
    if i == j:
        st.warning("Pick two different dimensions for the pad.")
        return None
    return i, j


def live_pad(base: dict, s: Setup, key: str, shape: tuple[int, int, int]) -> tuple[int, int] | None:
    """The 2-D pad on two chosen dimensions; returns them (None when there is no pad)."""
    hint = "Drag the point (or focus the plane and use the arrow keys); the other dimensions stay as set above."
    dims = _pad_dims(s, key, hint)
    if dims is None:
        return None
    i, j = dims
    side = shape[1]
    data = {**base, "x": _axis(s, i), "y": _axis(s, j), "size": side * -(-PAD_PX // side), "caption": s.caption}
    result = component("latent_pad")(key="sl_pad", data=data, on_released_change=lambda: None)
    _released(result, s.latent_dim)
    return i, j


def _pad_clicked(i: int, j: int, axes: list[sl.Axis]) -> None:
    """The server pad's click: the clicked grid code's two values go to their sliders (before they are drawn)."""
    event = st.session_state.get("sl_pad_chart") or {}
    for p in reversed(list((event.get("selection") or {}).get("points") or [])):
        cd = p.get("customdata") if isinstance(p, dict) else None
        if isinstance(cd, (list, tuple)) and len(cd) == 2 and all(isinstance(v, (int, float)) for v in cd):
            st.session_state[f"z_{i}"] = sl.snap(float(cd[0]), axes[i])
            st.session_state[f"z_{j}"] = sl.snap(float(cd[1]), axes[j])
            return


def server_pad(model, s: Setup, key: str, shape: tuple[int, int, int]) -> tuple[int, int] | None:
    """The 2-D pad decoded here: a grid of pictures over two dimensions (the others as the sliders
    hold them); a click on one moves both sliders there. Returns the dimensions (None: no pad)."""
    hint = "Click a picture to move both sliders to its code; the other dimensions stay as set above."
    dims = _pad_dims(s, key, hint)
    if dims is None:
        return None
    i, j = dims
    z = torch.tensor(st.session_state["sl_code"], dtype=torch.float32)
    xs, ys, codes = sl.pad_grid(z, i, j, s.axes)
    mosaic = to_pil(tile(decode_batches(model, codes), nrow=len(xs), padding=0))
    fig = pad_figure(mosaic, xs, ys, (float(z[i]), float(z[j])), (s.short(i), s.short(j)))
    st.plotly_chart(
        fig,
        key="sl_pad_chart",
        width="content",  # square pictures: the figure's own size, not the column's
        on_select=lambda: _pad_clicked(i, j, s.axes),
        selection_mode="points",
        config={"displaylogo": False},
    )
    return i, j


def server_sliders(model, s: Setup, decoder: LiveDecoder, shape: tuple[int, int, int]) -> None:
    """Today's server-side sliders (keys ``z_<j>``): each change is a round trip to decode."""
    fallback_note(decoder)
    left, right = st.columns([3, 2])
    band = bands(s)

    def one(j: int) -> None:
        a = s.axes[j]
        label = f"{s.label(j)}  ·  {band_label(band[j])}" if j in band else s.label(j)
        st.slider(label, a.lo, a.hi, step=a.step, key=f"z_{j}")

    with left:
        for j in s.active:
            one(j)
        if s.inactive:
            with st.expander(fold_note(len(s.inactive), s.deterministic)):
                for j in s.inactive:
                    one(j)
    z = [float(st.session_state[f"z_{j}"]) for j in range(s.latent_dim)]
    st.session_state["sl_code"] = z
    with torch.no_grad():
        x = model.decode(torch.tensor([z]).to(model.device))[0].cpu()
    side = shape[1]
    right.image(to_pil(x, scale=-(-IMAGE_PX // side)), caption=s.caption, output_format="PNG")


def failed(decoder: LiveDecoder) -> LiveDecoder:
    """The decoder, unavailable if this session's browser could not run it."""
    why = st.session_state.get("sl_live_failed")
    return replace(decoder, reason=f"the browser could not run the decoder ({why})") if why else decoder


def code_panel(model, s: Setup, pad: tuple[int, int] | None) -> torch.Tensor:
    """The code Python holds (from the last release): its PNG and, for a VAE, its prior density. (D,)"""
    z = torch.tensor(st.session_state["sl_code"], dtype=torch.float32)
    with torch.no_grad():
        x = model.decode(z[None].to(model.device))[0].cpu()
    row = st.container(horizontal=True, vertical_alignment="center")  # the button never narrower than its label
    row.download_button(
        "Download PNG",
        lambda: png_bytes(to_pil(x, scale=8)),  # built only when clicked
        "decoded.png",
        "image/png",
        key="sl_download_png",
    )
    c2 = row.container()
    if not s.deterministic:
        c2.caption(f"log N(z; 0, I) = {float(prior_log_density(z[None])[0]):.2f} nats")
    if pad is not None:
        i, j = pad
        c2.caption(f"On the server (sent on release): {dim_label(i)} = {z[i]:+.2f}, {dim_label(j)} = {z[j]:+.2f}")
    return z


def traversals(model, s: Setup, z: torch.Tensor) -> None:
    """One dimension swept around the code z (D,), and every active dimension as a grid, decoded here: one
    above the other, each no wider than the page (side by side, the strip ran under the grid at 1024 px)."""
    st.subheader("Traversals")
    c1, c2 = st.columns(2)
    steps = c1.slider("Steps", 3, 15, 9, key="sl_trav_steps")
    dim = c2.selectbox("Dimension (one-dimension row)", s.order, format_func=s.short, key=s.key("sl_trav_dim"))
    _one_dimension(model, s, z, int(dim), steps)
    _every_dimension(model, s, z, steps)


def _one_dimension(model, s: Setup, z: torch.Tensor, dim: int, steps: int) -> None:
    st.markdown(f"**One dimension: {dim_label(dim)}**")
    values = sl.traversal_values(s.axes[dim], s.deterministic, steps)
    frames = decode_batches(model, traversal(z, dim, values.tolist()))
    caption = " · ".join(f"{v:+.1f}" for v in values)
    st.image(strip(frames, scale=3), caption=caption, output_format="PNG")  # "content": never wider than the page
    st.download_button(
        "Download GIF",
        lambda: gif_bytes(frames, scale=6),
        f"traversal-{dim_label(dim)}.gif",
        "image/gif",
        key="sl_download_gif",
    )


def _every_dimension(model, s: Setup, z: torch.Tensor, steps: int) -> None:
    st.markdown("**Every active dimension**")
    rows = s.active
    grid = decode_batches(model, sl.traversal_grid(z, rows, s.axes, s.deterministic, steps))
    img = labelled_rows(to_pil(tile(grid, nrow=steps, pad_value=0.5), scale=2), [dim_label(j) for j in rows])
    sweep = "its own range" if s.deterministic else f"{-sl.TRAVERSAL_RANGE:+.0f} to {sl.TRAVERSAL_RANGE:+.0f}"
    st.image(
        img, caption=f"one row per active dimension, most informative first; each sweeps {sweep}", output_format="PNG"
    )
    st.download_button(
        "Download grid (PNG)", lambda: png_bytes(img), "traversals.png", "image/png", key="sl_download_grid"
    )
