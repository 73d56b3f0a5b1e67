"""Train: a VAE or an AE, in the background, with live curves, reconstructions and samples."""

import time

import plotly.graph_objects as go
import streamlit as st

from ui.common import explain, show
from vae.config import ConfigError, ModelConfig, TrainConfig
from vae.images import tile
from vae.jobs import MANAGER, JobError
from vae.registry import check_name, trained_path

st.set_page_config(page_title="Train · VAE Explorer", page_icon="🌗", layout="wide")
st.title("Train")
st.caption("Train a VAE or an AE in the background: it keeps going when you change page or reload.")

DATASETS = ["moons", "digits", "mnist", "fashion-mnist", "image folder"]

with st.form("train_form"):
    c1, c2, c3 = st.columns(3)
    dataset = c1.selectbox("Data set", DATASETS, key="tr_dataset")
    folder = c1.text_input("Image folder (for 'image folder')", key="tr_folder", placeholder="/path/to/images")
    data_dir = c1.text_input("MNIST data folder", key="tr_data_dir", placeholder="./data or $VAE_DATA_DIR")
    kind = c2.radio(
        "Model",
        ["vae", "ae"],
        key="tr_kind",
        horizontal=True,
        format_func=lambda k: {"vae": "VAE", "ae": "AE (no KL)"}[k],
    )
    arch = c2.radio("Architecture", ["mlp", "conv"], key="tr_arch", horizontal=True)
    hidden = c2.text_input("Hidden sizes (mlp widths or conv channels)", "512,256", key="tr_hidden")
    latent = c2.slider("Latent size", 2, 128, 16, key="tr_latent")
    image_size = c2.selectbox("Image size (image folder)", [28, 32, 64], index=1, key="tr_image_size")
    channels = c2.radio(
        "Channels (image folder)",
        [1, 3],
        key="tr_channels",
        horizontal=True,
        format_func=lambda c: "grey" if c == 1 else "RGB",
    )
    beta = c3.number_input("β (KL weight)", 0.0, 100.0, 1.0, 0.1, key="tr_beta")
    likelihood = c3.radio("Decoder", ["bernoulli", "gaussian"], key="tr_likelihood", horizontal=True)
    with c3.expander("More: σ, L, binarization"):
        sigma = st.number_input("Gaussian decoder σ", 0.001, 10.0, 0.1, 0.01, format="%.3f", key="tr_sigma")
        learn_sigma = st.checkbox("Learn σ", key="tr_learn_sigma")
        mc_samples = st.number_input("L: Monte Carlo samples of z per image", 1, 64, 1, key="tr_mc_samples")
        binarize = st.checkbox("Dynamic binarization (Bernoulli, MNIST-like data)", key="tr_binarize")
    epochs = c3.number_input("Epochs", 1, 1000, 10, key="tr_epochs")
    batch = c3.select_slider("Batch size", [16, 32, 64, 128, 256, 512], 128, key="tr_batch")
    lr = c3.number_input("Learning rate", 1e-5, 1.0, 1e-3, format="%.5f", key="tr_lr")
    seed = c3.number_input("Seed", 0, 2**31 - 1, 1, key="tr_seed")
    name = st.text_input(
        "Checkpoint name",
        f"my-{int(time.time()) % 100000}",
        key="tr_name",
        help="Saved as checkpoints/trained/NAME.safetensors; an existing name is never overwritten.",
    )
    start = st.form_submit_button("Start training", type="primary", key="tr_start")

if start:
    try:
        ds = f"folder:{folder.strip()}" if dataset == "image folder" else dataset
        if dataset == "image folder" and not folder.strip():
            raise ValueError("give the image folder's path")
        widths = tuple(int(v) for v in hidden.replace(" ", "").split(",") if v)
        shape = (int(channels), int(image_size), int(image_size)) if dataset == "image folder" else (1, 28, 28)
        model_cfg = ModelConfig(
            kind=kind,
            arch=arch,
            image_shape=shape,
            hidden=widths,
            latent_dim=int(latent),
            beta=float(beta),
            likelihood=likelihood,
            sigma=float(sigma),
            learn_sigma=bool(learn_sigma),
            mc_samples=int(mc_samples),
            binarize=bool(binarize),
        )
        train_cfg = TrainConfig(
            dataset=ds,
            epochs=int(epochs),
            batch_size=int(batch),
            lr=float(lr),
            seed=int(seed),
            data_dir=data_dir.strip() or None,
            log_every=5,
        )
        job = MANAGER.start(check_name(name.strip()), model_cfg, train_cfg)
        st.session_state["tr_job"] = job.id
        st.success(f"Started {job.name}: it writes {trained_path(job.name).name} after each epoch.")
    except (ConfigError, JobError, ValueError) as e:
        st.error(f"Cannot start: {e}")


def curves(job) -> go.Figure:
    fig = go.Figure()
    steps = job.steps
    if steps:
        x = [s["step"] for s in steps]
        fig.add_trace(go.Scatter(x=x, y=[s["loss"] for s in steps], name="loss = −recon + β·KL"))
        fig.add_trace(go.Scatter(x=x, y=[-s["recon"] for s in steps], name="−E_q[log p(x|z)]"))
        fig.add_trace(go.Scatter(x=x, y=[s["kl"] for s in steps], name="KL(q(z|x) ‖ N(0, I))"))
    if job.epochs:
        n = job.progress.steps_per_epoch if job.progress else 1
        fig.add_trace(
            go.Scatter(
                x=[e["epoch"] * n for e in job.epochs],
                y=[-e["test_elbo"] for e in job.epochs],
                name="test −ELBO",
                mode="lines+markers",
            )
        )
    fig.update_layout(
        height=320,
        margin=dict(l=10, r=10, t=30, b=10),
        xaxis_title="step",
        yaxis_title="nats per image (running mean over the epoch)",
    )
    return fig


def job_panel(job) -> None:
    p = job.progress
    st.markdown(
        f"**{job.name}** · {job.train_config.dataset} · {job.model_config.kind.upper()} "
        f"{job.model_config.arch} z={job.model_config.latent_dim} · *{job.status}* {job.message}"
    )
    if p is not None:
        frac = ((p.epoch - 1) * p.steps_per_epoch + p.step) / (p.epochs * p.steps_per_epoch)
        st.progress(
            min(1.0, frac),
            text=f"epoch {p.epoch}/{p.epochs} · step {p.step}/{p.steps_per_epoch} · "
            f"loss {p.loss:.2f} · {p.samples_per_s:,.0f} images/s · ETA {p.eta_s:,.0f} s",
        )
    if job.running and st.button("Stop", key=f"tr_stop_{job.id}"):
        job.stop()
    st.plotly_chart(curves(job), key=f"tr_curves_{job.id}")
    if job.previews:
        c1, c2 = st.columns(2)
        pv = job.previews
        with c1:
            show(tile(pv["originals"].cpu(), nrow=8, pad_value=0.3), "test images", scale=2)
            show(tile(pv["reconstructions"], nrow=8, pad_value=0.3), "their reconstructions", scale=2)
        with c2:
            show(tile(pv["samples"], nrow=8, pad_value=0.3), "samples from the prior", scale=2)
    if job.status in ("done", "stopped"):
        m = job.metrics
        if m.get("elbo") is not None:
            st.success(
                f"Test ELBO {m['elbo']:.2f} nats/image"
                + (f", IWAE {m['iwae']:.2f}" if m.get("iwae") else "")
                + ". The model is in the picker now."
            )
        if st.button("Use this model", key=f"tr_use_{job.id}"):
            st.session_state["model_choice"] = f"{job.name} (trained here)"
            st.switch_page("app.py")
    if job.status == "failed":
        st.error(job.message)


jobs = MANAGER.jobs()
running = any(j.running for j in jobs)


@st.fragment(run_every=1.0 if running else None)
def live() -> None:
    """Refreshes once a second while a job runs; the rest of the page stays put."""
    for job in MANAGER.jobs():
        with st.container(border=True):
            job_panel(job)
    if running and not any(j.running for j in MANAGER.jobs()):
        st.rerun()  # the last job finished: refresh the whole page (and the model picker)


if jobs:
    st.subheader("Training runs on this server")
    live()
else:
    st.info("No training run yet. Choose the settings above and press **Start training**.")

explain(
    r"""
Each step draws a batch $x$, encodes it to $\mu, \log\sigma^2$, samples $z = \mu + \sigma \odot \varepsilon$ with
$\varepsilon \sim \mathcal N(0, I)$ (the reparameterization, so gradients flow through $\mu$ and $\sigma$), decodes, and
takes an Adam step on

$$\mathcal L = -\,\mathbb E_{q(z\mid x)}[\log p(x\mid z)] + \beta\,\mathrm{KL}\big(q(z\mid x)\,\|\,\mathcal N(0, I)\big),$$

the negative ELBO when $\beta = 1$. The curves show its two terms in nats per image: the reconstruction term
(a Bernoulli decoder's binary cross-entropy, or a Gaussian decoder's scaled squared error) falls as the decoder
learns; the KL usually rises at first as the codes start to carry information. An **AE** has no KL and no noise.
"""
)
