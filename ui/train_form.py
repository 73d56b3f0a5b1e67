"""The Train page's form: the data set and its inputs, then the run's settings and the Start button.

The data set and its inputs sit outside the form: changing them reruns the page, so a choice that cannot
work here (MNIST without its files, say) is marked as such and Start disabled before anything is pressed.
The settings are a form that only its button submits (``enter_to_submit=False``): Enter in a field never
starts a run.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from services.training import IMAGE_SIZES, choices, spec_for, start_training, unavailable
from ui.forms import config_input
from vae.config import ModelConfig, TrainConfig

KINDS = {"vae": "VAE", "ae": "AE (no KL)"}


def _option(choice: str) -> str:
    """A data-set option as listed: its name, and why it cannot train here from the default data folder.

    Only the default folder: Streamlit matches a selection by its label, so a label that changed with the
    typed data folder would drop the selection. The warning below the choice reads the typed folder."""
    absent = spec_for(choice).absent(None)
    return f"{choice} ({absent.what})" if absent else choice


def _data_inputs(inputs: tuple[str, ...], where: Any) -> dict[str, Any]:
    """The inputs the data set takes (of ``vae.datasets.core.FORM_INPUTS``), by config field name."""
    values: dict[str, Any] = {}
    if "folder" in inputs:
        values["folder"] = where.text_input("Image folder", key="tr_folder", placeholder="/path/to/images")
    c1, c2 = where.columns(2) if {"image_size", "channels"} & set(inputs) else (where, where)
    if "image_size" in inputs:
        values["image_size"] = c1.selectbox("Image size", IMAGE_SIZES, index=1, key="tr_image_size")
    if "channels" in inputs:
        values["channels"] = c2.radio(
            "Channels", [1, 3], key="tr_channels", horizontal=True, format_func=lambda c: "grey" if c == 1 else "RGB"
        )
    if "data_dir" in inputs:
        values["data_dir"] = config_input(
            TrainConfig, "data_dir", "tr_data_dir", container=where, placeholder="./data or $VAE_DATA_DIR"
        )
    return values


def data_choice() -> tuple[str, dict[str, Any], str | None]:
    """The data set (an option of ``services.training.choices``), its inputs' values, and why it cannot
    train here (shown as a warning; Start is then disabled) or None."""
    left, right = st.columns([1, 2])
    choice = left.selectbox("Data set", choices(), key="tr_dataset", format_func=_option)
    spec = spec_for(choice)
    left.caption(spec.summary)
    values = _data_inputs(spec.inputs, right)
    problem = unavailable(choice, values.get("data_dir"))
    if problem:
        st.warning(f"{problem} Start is disabled until then.", icon="⚠️")
    return choice, values, problem


def _optimisation(where: Any) -> dict[str, Any]:
    return {
        "epochs": config_input(TrainConfig, "epochs", "tr_epochs", container=where, help="Passes over the data."),
        "batch_size": config_input(TrainConfig, "batch_size", "tr_batch", container=where, step=16),
        "lr": config_input(TrainConfig, "lr", "tr_lr", container=where, step=1e-4, format="%.5f"),
        "seed": config_input(TrainConfig, "seed", "tr_seed", container=where, min_value=0, max_value=2**31 - 1),
    }


def _model(where: Any) -> dict[str, Any]:
    hidden_label = "Hidden sizes (mlp widths or conv channels)"
    return {
        "kind": config_input(ModelConfig, "kind", "tr_kind", container=where, format_func=KINDS.get),
        "arch": config_input(ModelConfig, "arch", "tr_arch", container=where),
        "hidden": config_input(
            ModelConfig, "hidden", "tr_hidden", container=where, label=hidden_label, default=(512, 256)
        ),
        "latent_dim": config_input(ModelConfig, "latent_dim", "tr_latent", container=where, default=16, slider=True),
    }


def _objective(where: Any) -> dict[str, Any]:
    values = {
        "beta": config_input(
            ModelConfig,
            "beta",
            "tr_beta",
            container=where,
            step=0.1,
            label="β (KL weight; VAE only)",
            help="Weight of the KL term in a VAE's loss; an AE has no KL, and ignores it.",
        ),
        "likelihood": config_input(ModelConfig, "likelihood", "tr_likelihood", container=where),
    }
    with where.expander("More: σ, L, binarization"):
        values["sigma"] = config_input(ModelConfig, "sigma", "tr_sigma", step=0.01, format="%.4f")
        values["learn_sigma"] = config_input(ModelConfig, "learn_sigma", "tr_learn_sigma")
        values["mc_samples"] = config_input(ModelConfig, "mc_samples", "tr_mc_samples")
        values["binarize"] = config_input(
            ModelConfig, "binarize", "tr_binarize", label="Dynamic binarization (Bernoulli, MNIST-like data)"
        )
    return values


def settings(blocked: bool) -> tuple[dict[str, Any], str, bool]:
    """The run's settings (by config field name), the checkpoint name, and whether Start was pressed.
    ``blocked`` disables Start (the data set cannot train here)."""
    with st.form("train_form", enter_to_submit=False):
        c1, c2, c3 = st.columns(3)
        values = {**_optimisation(c1), **_model(c2), **_objective(c3)}
        name = st.text_input(
            "Checkpoint name",
            f"my-{int(time.time()) % 100000}",
            key="tr_name",
            help="Saved as checkpoints/trained/NAME.safetensors; an existing name is never overwritten.",
        )
        start = st.form_submit_button("Start training", type="primary", key="tr_start", disabled=blocked)
    return values, name, start


def start(notice: Any, choice: str, values: dict[str, Any], name: str) -> None:
    """Start the run the form describes, or say in ``notice`` why it cannot start: every setting, the data
    and the name are checked before anything starts or is written."""
    try:
        job = start_training(name, choice, values)
    except ValueError as e:
        notice.error(f"Cannot start: {e}")
    else:
        st.session_state["tr_job"] = job.id
        notice.success(f"Started {job.name}: it writes {job.path.name} after each epoch.")
