"""Train: a VAE or an AE, in the background, with live curves, reconstructions and samples."""

import time

import streamlit as st

from services.jobs import MANAGER, TrainingJob
from services.training import DATASETS, IMAGE_SIZES, data_inputs, start_training
from ui import training as ui_train
from ui.common import explain
from ui.forms import config_input
from vae.config import ModelConfig, TrainConfig

st.set_page_config(page_title="Train · VAE Explorer", page_icon="🌗", layout="wide")
st.title("Train")
st.caption("Train a VAE or an AE in the background: it keeps going when you change page or reload.")

# Runs first: after a reload a running job is what one came back for, so the form folds away below it.
runs, notice = st.container(), st.container()
with st.expander("New training run", expanded=not any(j.active for j in MANAGER.jobs())):
    # Outside the form: a form does not rerun on change, and the data set decides the fields shown below.
    dataset = st.selectbox("Data set", DATASETS, key="tr_dataset")
    shown = data_inputs(dataset)
    with st.form("train_form"):
        c1, c2, c3 = st.columns(3)
        values: dict = {}
        if "folder" in shown:
            values["folder"] = c1.text_input("Image folder", key="tr_folder", placeholder="/path/to/images")
            values["image_size"] = c1.selectbox("Image size", IMAGE_SIZES, index=1, key="tr_image_size")
            values["channels"] = c1.radio(
                "Channels",
                [1, 3],
                key="tr_channels",
                horizontal=True,
                format_func=lambda c: "grey" if c == 1 else "RGB",
            )
        if "data_dir" in shown:
            values["data_dir"] = config_input(
                TrainConfig, "data_dir", "tr_data_dir", container=c1, placeholder="./data or $VAE_DATA_DIR"
            )
        values["epochs"] = config_input(TrainConfig, "epochs", "tr_epochs", container=c1, help="Passes over the data.")
        values["batch_size"] = config_input(TrainConfig, "batch_size", "tr_batch", container=c1, step=16)
        values["lr"] = config_input(TrainConfig, "lr", "tr_lr", container=c1, step=1e-4, format="%.5f")
        values["seed"] = config_input(TrainConfig, "seed", "tr_seed", container=c1, min_value=0, max_value=2**31 - 1)

        kinds = {"vae": "VAE", "ae": "AE (no KL)"}
        values["kind"] = config_input(ModelConfig, "kind", "tr_kind", container=c2, format_func=kinds.get)
        values["arch"] = config_input(ModelConfig, "arch", "tr_arch", container=c2)
        values["hidden"] = config_input(
            ModelConfig,
            "hidden",
            "tr_hidden",
            container=c2,
            label="Hidden sizes (mlp widths or conv channels)",
            default=(512, 256),
        )
        values["latent_dim"] = config_input(
            ModelConfig, "latent_dim", "tr_latent", container=c2, default=16, slider=True
        )

        values["beta"] = config_input(
            ModelConfig,
            "beta",
            "tr_beta",
            container=c3,
            step=0.1,
            label="β (KL weight; VAE only)",
            help="Weight of the KL term in a VAE's loss; an AE has no KL, and ignores it.",
        )
        values["likelihood"] = config_input(ModelConfig, "likelihood", "tr_likelihood", container=c3)
        with c3.expander("More: σ, L, binarization"):
            values["sigma"] = config_input(ModelConfig, "sigma", "tr_sigma", step=0.01, format="%.4f")
            values["learn_sigma"] = config_input(ModelConfig, "learn_sigma", "tr_learn_sigma")
            values["mc_samples"] = config_input(ModelConfig, "mc_samples", "tr_mc_samples")
            values["binarize"] = config_input(
                ModelConfig, "binarize", "tr_binarize", label="Dynamic binarization (Bernoulli, MNIST-like data)"
            )
        name = st.text_input(
            "Checkpoint name",
            f"my-{int(time.time()) % 100000}",
            key="tr_name",
            help="Saved as checkpoints/trained/NAME.safetensors; an existing name is never overwritten.",
        )
        start = st.form_submit_button("Start training", type="primary", key="tr_start")

if start:
    try:  # every setting, the data and the name are checked before anything starts or is written
        job = start_training(name, dataset, values)
    except ValueError as e:
        notice.error(f"Cannot start: {e}")
    else:
        st.session_state["tr_job"] = job.id
        notice.success(f"Started {job.name}: it writes {job.path.name} after each epoch.")


def job_panel(job: TrainingJob) -> None:
    """One run: its state, progress, curves, previews and what can be done with it."""
    cfg, p = job.model_config, job.latest
    st.markdown(
        f"**{job.name}** · {job.train_config.dataset} · {cfg.kind.upper()} "
        f"{cfg.arch} z={cfg.latent_dim} · *{job.state}* {job.message}"
    )
    if p is not None:
        st.progress(
            job.progress,
            text=f"epoch {p.epoch}/{p.epochs} · step {p.step}/{p.steps_per_epoch} · "
            f"loss {p.loss:.2f} · {p.samples_per_s:,.0f} images/s · ETA {p.eta_s:,.0f} s",
        )
    if job.active:
        if st.button("Stop", key=f"tr_stop_{job.id}", disabled=job.cancel_requested):
            job.cancel()
    elif st.button("Dismiss", key=f"tr_dismiss_{job.id}", help="Take it off this list; its checkpoint stays."):
        MANAGER.dismiss(job.id)
        st.rerun()
    if job.steps or job.epochs:  # a run that failed before its first step has nothing to plot
        st.plotly_chart(ui_train.curves(job), key=f"tr_curves_{job.id}")
    if job.previews:
        ui_train.previews(job)
    if job.state == "done":
        ui_train.final_metrics(job)
        if st.button("Use this model", key=f"tr_use_{job.id}"):
            st.session_state["model_choice"] = f"{job.name} (trained here)"
            st.switch_page("app.py")
    elif job.state == "error":
        st.error(job.message)


jobs = MANAGER.jobs()
running = any(j.active for j in jobs)


@st.fragment(run_every=1.0 if running else None)
def live() -> None:
    """Refreshes once a second while a job runs; the rest of the page stays put."""
    for job in MANAGER.jobs():
        with st.container(border=True):
            job_panel(job)
    if running and not any(j.active for j in MANAGER.jobs()):
        st.rerun()  # the last job finished: refresh the whole page (and the model picker)


with runs:
    if jobs:
        st.subheader("Training runs on this server")
        live()
    else:
        st.info("No training run yet. Choose the settings below and press **Start training**.")

explain(
    r"""
Each step draws a batch $x$, encodes it to $\mu, \log\sigma^2$, samples $z = \mu + \sigma \odot \varepsilon$ with
$\varepsilon \sim \mathcal N(0, I)$ (the reparameterization, so gradients flow through $\mu$ and $\sigma$), decodes, and
takes an Adam step on

$$\mathcal L = -\,\mathbb E_{q(z\mid x)}[\log p(x\mid z)] + \beta\,\mathrm{KL}\big(q(z\mid x)\,\|\,\mathcal N(0, I)\big),$$

the negative ELBO when $\beta = 1$. The curves show its two terms in nats per image: the reconstruction term
(a Bernoulli decoder's binary cross-entropy, or a Gaussian decoder's scaled squared error) falls as the decoder
learns; the KL usually rises at first as the codes start to carry information. An **AE** has no KL and no noise:
its loss is the reconstruction term $-\log p(x\mid \hat z)$ of its one code $\hat z$ alone, and its curves show only that.
"""
)
