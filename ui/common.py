"""Streamlit glue shared by every page: the model picker, caches, the upload widget, the explanation panel.

Pages stay thin: they lay out widgets and call into ``services`` and ``ui``; everything numeric lives
in ``services`` and ``vae``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import streamlit as st
import torch

from services.registry import Entry, choose_entry, list_checkpoints
from vae.checkpoint import Checkpoint, CheckpointError, load_checkpoint, read_metadata
from vae.data import DataError, Dataset, default_data_dir, find, load_dataset
from vae.evaluate import encode_mean, kl_by_dimension
from vae.images import SUFFIXES, limit_total, to_pil

# One intra-op thread by default: a single-image decode is ~1 ms on one thread but can take
# ~60 ms with two when a training run keeps the other core busy (benchmarks/app_latency.py).
torch.set_num_threads(int(os.environ.get("VAE_APP_THREADS", "1")))

MODEL_KEY = "model_choice"  # session key (not a widget key): survives page changes
PICKER_KEY = "model_picker"  # the sidebar's widget, which shows MODEL_KEY
UPLOAD_PREFIX = "upload:"


@dataclass
class Active:
    """The model every page works on, and the data it was trained on."""

    name: str
    ckpt: Checkpoint
    key: str  # identity: the file and its mtime (or an upload's digest); changes when the file changes

    @cached_property
    def _data(self) -> tuple[Dataset | None, str]:
        """Loaded on first use only: the home page never needs it, and moons take ~2 s to draw."""
        ckpt = self.ckpt
        ds = ckpt.dataset.get("name") or (ckpt.train.dataset if ckpt.train else "")
        if not ds:
            return None, ""
        c, h, _ = ckpt.config.image_shape
        data, note = load_data(ds, ckpt.train.data_dir if ckpt.train else None, h, c)
        if data is not None and data.image_shape != ckpt.config.image_shape:
            return None, f"The data's images are {data.image_shape}; the model needs {ckpt.config.image_shape}."
        return data, note

    @property
    def data(self) -> Dataset | None:
        return self._data[0]

    @property
    def data_note(self) -> str:
        return self._data[1]

    @property
    def model(self):
        return self.ckpt.model

    @property
    def config(self):
        return self.ckpt.config

    @property
    def upload_style(self) -> tuple[str, bool]:
        """How uploads are preprocessed for this model (a vae.images style) and whether its data has
        a dark background: from the checkpoint, else from its data set (loaded only if needed)."""
        ds = self.ckpt.dataset
        data = None if "style" in ds and "dark_background" in ds else self.data
        style = ds.get("style") or (data.style if data is not None else "plain")
        dark = ds.get("dark_background", data.dark_background if data is not None else True)
        return style, bool(dark)


@st.cache_resource(show_spinner="Loading checkpoint…", max_entries=16)
def _load_path(path: str, mtime: float) -> Checkpoint:
    torch.set_grad_enabled(False)
    return load_checkpoint(path)


@st.cache_resource(show_spinner="Loading uploaded checkpoint…", max_entries=4)
def _load_bytes(digest: str, data: bytes, name: str) -> Checkpoint:
    return load_checkpoint(data, name=name)


@st.cache_resource(show_spinner="Loading data…", max_entries=8)
def load_data(name: str, data_dir: str | None, image_size: int, channels: int) -> tuple[Dataset | None, str]:
    """The checkpoint's data set and a note on where it came from (or why it cannot load), never
    downloaded: the app must work offline.

    MNIST is looked for in the checkpoint's data folder, then ./data (or $VAE_DATA_DIR); without its
    files, its test set comes from the copy shipped in vae/assets/mnist, with no training images.
    """
    dirs = [d for d in (data_dir, default_data_dir()) if d and Path(d).is_dir()] or [default_data_dir()]
    error = None
    for d in dirs:
        try:
            data = load_dataset(name, data_dir=d, image_size=image_size, channels=channels, download=False)
            return data, data.note
        except DataError as e:
            error = e
    if (spec := find(name)) is not None and spec.fallback is not None:  # MNIST's shipped test set
        try:
            data = load_dataset(name, data_dir=dirs[-1], image_size=image_size, download=False, need_train=False)
            return data, data.note
        except DataError as e:
            error = e
    return None, f"The data set of this model cannot be loaded: {error}"


@st.cache_resource(show_spinner="Encoding images…", max_entries=32)
def codes_of(key: str, _model, _x: torch.Tensor) -> torch.Tensor:
    """Posterior means (N, D) of images x, cached under ``key`` (say checkpoint and split)."""
    return encode_mean(_model, _x)


@st.cache_resource(show_spinner="Measuring each dimension's KL…", max_entries=16)
def dimension_kl(key: str, _model, _x: torch.Tensor) -> torch.Tensor:
    """Mean KL per latent dimension over the test split (D,)."""
    return kl_by_dimension(_model, _x)


def _entries() -> list[Entry]:
    return list_checkpoints()


def _on_pick() -> None:
    st.session_state[MODEL_KEY] = st.session_state[PICKER_KEY]


def pick_model() -> Active | None:
    """Sidebar model picker; returns the active model, or None (with a message) if none loads."""
    entries = _entries()
    by_label = {e.label: e for e in entries}
    uploaded = st.session_state.get("uploaded_ckpt")
    labels = list(by_label) + ([f"{UPLOAD_PREFIX}{uploaded[0]}"] if uploaded else [])
    if not labels:
        st.error("No checkpoint found in checkpoints/. Train one on the Train page or upload one.")
        return None
    current = st.session_state.get(MODEL_KEY)
    if current not in labels:
        default = choose_entry(entries, None)
        current = default.label if default else labels[0]
        st.session_state[MODEL_KEY] = current
    # The picker's own state follows MODEL_KEY (set by an upload, a page's "Use this model", a stale choice):
    # it never names another model than the one the page shows.
    st.session_state[PICKER_KEY] = current
    with st.sidebar:
        st.selectbox("Model", labels, key=PICKER_KEY, on_change=_on_pick)
        with st.expander("Upload a checkpoint"):
            up = st.file_uploader("A .safetensors checkpoint", type=["safetensors"], key="ckpt_upload")
            if up is not None:
                data = up.getvalue()
                digest = hashlib.sha256(data).hexdigest()[:16]
                try:
                    _load_bytes(digest, data, up.name)
                except CheckpointError as e:
                    st.error(str(e))
                else:
                    if not uploaded or uploaded[1] != digest:
                        st.session_state["uploaded_ckpt"] = (up.name, digest, data)
                        st.session_state[MODEL_KEY] = f"{UPLOAD_PREFIX}{up.name}"
                        st.rerun()
    choice = st.session_state[MODEL_KEY]
    try:
        if choice.startswith(UPLOAD_PREFIX) and uploaded:
            name, digest, data = uploaded
            return Active(name=name, ckpt=_load_bytes(digest, data, name), key=f"{name}:{digest}")
        return _open(by_label[choice])
    except (CheckpointError, OSError, KeyError) as e:
        st.error(f"This checkpoint cannot be used: {e}")
        return None


def _open(entry: Entry) -> Active:
    """The checkpoint of a picker entry, loaded once per file version (path and mtime)."""
    mtime = entry.path.stat().st_mtime
    return Active(name=entry.name, ckpt=_load_path(str(entry.path), mtime), key=f"{entry.name}:{mtime}")


def partner(active: Active, kind: str) -> Active | None:
    """A committed or trained checkpoint of ``kind`` on the same data and image shape, if any.

    The committed moons VAE and AE share architecture and seed: the seeds' AE-vs-VAE example.
    """
    ds = active.ckpt.dataset.get("name")
    best = None
    for e in _entries():
        if e.name == active.name:
            continue
        try:
            meta = read_metadata(e.path)
        except CheckpointError:
            continue
        cfg = meta.get("config") or {}
        if meta.get("dataset", {}).get("name") == ds and cfg.get("kind") == kind:
            if list(cfg.get("image_shape", [])) == list(active.config.image_shape):
                same_arch = cfg.get("arch") == active.config.arch and list(cfg.get("hidden", [])) == list(
                    active.config.hidden
                )
                if best is None or same_arch:
                    best = e
                if same_arch:
                    break
    if best is None:
        return None
    try:
        return _open(best)
    except (CheckpointError, OSError):
        return None


def cache_key(active: Active) -> str:
    """A key for what is computed from the model and its data: it changes whenever the checkpoint
    file (``Active.key``) or the data it is shown on changes (another data folder, say)."""
    data = active.data
    if data is None:
        return active.key
    return f"{active.key}:{data.name}:{data.n_train}:{len(data.test_x)}:{data.streamed}"


def explain(markdown: str) -> None:
    """The folded 'What am I seeing?' panel (Markdown with $LaTeX$)."""
    with st.expander("What am I seeing?"):
        st.markdown(markdown)


def show(x: torch.Tensor, caption: str | None = None, width: int | str = "content", scale: int = 1) -> None:
    """Show one model image (C, H, W) enlarged with nearest-neighbour pixels."""
    st.image(to_pil(x, scale=scale), caption=caption, width=width, output_format="PNG")


def _through_the_navigation() -> None:
    """Run this page through app.py's st.navigation (the sidebar's "Home" first), never on its own.

    With a pages/ folder beside the entry script, Streamlit runs a page opened by its URL on its own, as the
    multipage apps before st.navigation did (the sidebar then lists the entry file as "app"), until the entry
    script has called st.navigation once in the process. The first such page run clears that flag and runs
    again, now through app.py. Not under AppTest, which sets that flag again before every run (a rerun would
    drop the run's button clicks) and draws no sidebar.
    """
    from streamlit import config
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory and not config.get_option("global.appTest"):
        PagesManager.uses_pages_directory = False
        st.rerun()


def page_header(title: str, line: str, model: bool = True) -> Active | None:
    """Page set-up shared by every page: config, title, the model picker (and the data's note). A page that
    needs no checkpoint (``model=False``: Train, Mixtures) gets no picker and None."""
    _through_the_navigation()
    st.set_page_config(page_title=f"{title} · VAE Explorer", page_icon="🌗", layout="wide")
    st.title(title)
    st.caption(line)
    if not model:
        return None
    active = pick_model()
    if active is not None and active.data_note:
        st.info(active.data_note)
    return active


def upload_images(
    label: str,
    key: str,
    multiple: bool = True,
    help: str | None = None,
    max_files: int | None = None,
    purpose: str = "used",
) -> list[tuple[str, bytes]]:
    """The one image upload widget: (name, bytes) of each file that is kept.

    Accepts the image suffixes ``vae.images`` reads. Files beyond ``max_files`` are dropped with a
    warning ("only the first N are <purpose>"); files past the total size allowed
    (``vae.images.limit_total``) are refused with an error each, naming the file.
    """
    got = st.file_uploader(label, type=list(SUFFIXES), accept_multiple_files=multiple, key=key, help=help)
    files = list(got or []) if multiple else ([got] if got is not None else [])
    if max_files is not None and len(files) > max_files:
        st.warning(f"{len(files)} files uploaded: only the first {max_files} are {purpose}.")
        files = files[:max_files]
    kept, refused = limit_total([(f.name, f.getvalue()) for f in files])
    for name, why in refused:
        st.error(f"{name}: {why}")
    return kept
