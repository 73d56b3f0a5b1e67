"""VAE Explorer — home page: pick a model, read its card, sample from the prior.

Run with ``streamlit run app.py``.
"""

import streamlit as st

from services.registry import choose_entry, list_checkpoints
from vae.meta import CheckpointError, read_metadata

# The title, the page list and the model card come first, from the checkpoint's metadata alone:
# they show while torch (about 3 s) is still importing for the samples below.
st.set_page_config(page_title="VAE Explorer", page_icon="🌗", layout="wide")
st.title("VAE Explorer")
st.caption("Train or load a Variational AutoEncoder, then see what it learned.")
st.markdown(
    """
- **Train** — train a VAE or an AE in the background, with live loss curves and samples.
- **Latent sliders** — move each latent dimension and watch the decoder's image change.
- **Interpolate** — walk from one image to another in latent space: the VAE, the AE and a pixel cross-fade.
- **Latent map** — the encoded test set in 2-D (PCA, t-SNE); hover to decode, click a point to pick it.
- **Reconstruct** — upload images; see their reconstruction, ELBO and log-likelihood estimate.
"""
)


def model_card(name: str, cfg: dict, dataset: dict, history: dict, m: dict) -> None:
    """Data set, kind, architecture, latent size, β, likelihood, epochs, test metrics, loss curve."""
    hist = history.get("epochs", [])
    hidden, latent = cfg.get("hidden", []), cfg.get("latent_dim")
    st.subheader(f"Model card · {name}")
    cols = st.columns(5)
    cols[0].metric("Data set", dataset.get("name", "?"))
    cols[1].metric("Kind", str(cfg.get("kind", "?")).upper())
    cols[2].metric(
        "Architecture", str(cfg.get("arch", "?")).upper(), help=f"hidden sizes {', '.join(map(str, hidden))}"
    )
    cols[3].metric("Latent size", latent)
    cols[4].metric("Epochs", len(hist))
    cols = st.columns(5)
    cols[0].metric("β", f"{cfg.get('beta', 1):g}")
    cols[1].metric("Likelihood", f"{cfg.get('likelihood')}" + (" (binarized)" if cfg.get("binarize") else ""))
    cols[2].metric("Test ELBO (nats)", f"{m['elbo']:.2f}" if m.get("elbo") is not None else "—")
    iw = f"{m['iwae']:.2f}" if m.get("iwae") is not None else "—"
    covered = m.get("iwae_n") or m.get("n")  # files written before iwae_n existed scored all n images
    on = f", {covered:,} images" if m.get("iwae") is not None and covered else ""
    cols[3].metric(f"Test IWAE k={m.get('iwae_k', 0)}{on}", iw)
    au = m.get("active_units")
    cols[4].metric("Active units", f"{au} / {latent}" if au is not None else "—")
    st.caption(
        f"{cfg.get('arch')} encoder {' → '.join(map(str, hidden))} → {latent}-d code; "
        f"images {'×'.join(map(str, cfg.get('image_shape', [])))}"
    )
    if hist:
        st.line_chart(
            {"train loss": [e["loss"] for e in hist], "test −ELBO": [-e["test_elbo"] for e in hist]},
            height=200,
            x_label="epoch",
            y_label="nats/image",
        )


card = st.empty()
entry = choose_entry(list_checkpoints(), st.session_state.get("model_choice"))
shown = None
if entry is not None:
    try:
        meta = read_metadata(entry.path)
    except CheckpointError:
        pass
    else:
        with card.container():
            model_card(
                entry.name,
                meta.get("config") or {},
                meta.get("dataset") or {},
                meta.get("history") or {},
                meta.get("metrics") or {},
            )
        shown = entry.name

import torch  # noqa: E402  (after the card on purpose)

from ui.common import explain, pick_model, show  # noqa: E402
from vae.export import decoder_onnx  # noqa: E402
from vae.images import tile  # noqa: E402


def download_decoder(name: str, model) -> None:
    """The model's decoder as an ONNX file, exported only when the button is clicked."""
    c1, c2 = st.columns([1, 3], vertical_alignment="center")
    c1.download_button(
        "Download decoder (ONNX)",
        lambda: decoder_onnx(model),
        f"{name.removesuffix('.safetensors')}-decoder.onnx",
        "application/octet-stream",
        key="home_download_onnx",
    )
    c, h, w = model.config.image_shape
    c2.caption(
        f'Run the decoder anywhere ONNX runs: it takes "z", float32 (N, {model.latent_dim}), and gives "x", '
        f"float32 (N, {c}, {h}, {w}): the decoder's mean, pixels in [0, 1]."
    )


active = pick_model()
if active is not None and active.name != shown:  # an uploaded checkpoint, or the file changed
    ckpt = active.ckpt
    with card.container():
        model_card(active.name, ckpt.config.to_dict(), ckpt.dataset, ckpt.history, ckpt.metrics)
if active is None:
    card.empty()
else:
    download_decoder(active.name, active.model)
    st.subheader("Samples from the prior")
    c1, c2 = st.columns([3, 1])
    temperature = c1.slider(
        "Temperature (z ~ N(0, t² I))",
        0.0,
        2.0,
        1.0,
        0.05,
        key="home_temperature",
        help="Scales the prior's standard deviation: below 1 gives typical images, above 1 unusual ones.",
    )
    if c2.button("Resample", key="home_resample"):
        st.session_state["home_seed"] = st.session_state.get("home_seed", 0) + 1
    gen = torch.Generator().manual_seed(st.session_state.get("home_seed", 0))
    with torch.no_grad():
        samples = active.model.sample(64, temperature=temperature, generator=gen).cpu()
    show(tile(samples, nrow=16, padding=2, pad_value=0.3), scale=3)

explain(
    r"""
A VAE learns an **encoder** $q_\phi(z\mid x) = \mathcal N(\mu, \operatorname{diag}\sigma^2)$ and a **decoder**
$p_\theta(x\mid z)$ by maximising the evidence lower bound

$$\log p(x) \;\ge\; \mathrm{ELBO} = \mathbb E_{q(z\mid x)}[\log p(x\mid z)] - \mathrm{KL}\big(q(z\mid x)\,\|\,\mathcal N(0, I)\big).$$

The first term rewards good reconstructions; the KL keeps each code close to the prior $\mathcal N(0, I)$.
That is why **sampling** works: draw $z \sim \mathcal N(0, I)$ and decode it — the grid above. The model card's
*test ELBO* and *IWAE* are in nats per image (higher is better); IWAE is the tighter importance-weighted bound
$\log \frac1k \sum_i p(x, z_i)/q(z_i\mid x)$. *Active units* are the latent dimensions whose average KL exceeds
0.01 nats: the ones the model actually uses.
"""
)
