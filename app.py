"""VAE Explorer — home page: pick a model, read its card, sample from the prior.

Run with ``streamlit run app.py``.
"""

import streamlit as st

from services.registry import choose_entry, list_checkpoints
from ui.texts import likelihood_note
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
- **Reconstruct** — upload images; see their reconstruction, ELBO, log-likelihood estimate and whether they are typical.
- **Compare** — two to four models side by side on the same inputs, and the rate–distortion plot: what β trades.
- **Mixtures** — from a mixture of K Gaussians to a VAE's infinite mixture: density estimation and sampling side by side.
"""
)


def _metric(v: float | None) -> str:
    return f"{v:.2f}" if v is not None else "—"


def vae_metrics(cols: list, cfg: dict, m: dict) -> None:
    """β, the test ELBO and IWAE, and the active units: what only a VAE has."""
    cols[0].metric("β", f"{cfg.get('beta', 1):g}")
    cols[2].metric("Test ELBO (nats)", _metric(m.get("elbo")))
    covered = m.get("iwae_n") or m.get("n")  # files written before iwae_n existed scored all n images
    on = f"over {covered:,} test images" if m.get("iwae") is not None and covered else None
    part = f" · first {covered:,} of {m['n']:,}" if on and m.get("n") and covered < m["n"] else ""  # in view
    cols[3].metric(f"Test IWAE k={m.get('iwae_k', 0)}{part}", _metric(m.get("iwae")), help=on)
    au = m.get("active_units")
    cols[4].metric("Active units", f"{au} / {cfg.get('latent_dim')}" if au is not None else "—")


def ae_metrics(cols: list, cfg: dict, m: dict) -> None:
    """An AE's only score: the reconstruction log-likelihood of its code, log p(x|ẑ)."""
    cols[0].metric("Code", "deterministic", help="An AE encodes x to one point ẑ: no q(z|x), no prior, no KL.")
    recon = m.get("recon", m.get("elbo"))  # an AE's "ELBO" is its reconstruction term (KL 0)
    cols[2].metric("Test log p(x|ẑ) (nats)", _metric(recon), help="Reconstruction log-likelihood, per test image.")


def model_card(name: str, cfg: dict, dataset: dict, history: dict, m: dict) -> None:
    """Data set, kind, architecture, latent size, likelihood, epochs, test metrics and loss curve: a VAE's β,
    ELBO, IWAE and active units; an AE's reconstruction log-likelihood, the only thing it has."""
    hist = history.get("epochs", [])
    hidden, latent = cfg.get("hidden", []), cfg.get("latent_dim")
    is_ae = cfg.get("kind") == "ae"
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
    cols[1].metric("Likelihood", f"{cfg.get('likelihood')}" + (" (binarized)" if cfg.get("binarize") else ""))
    if is_ae:
        ae_metrics(cols, cfg, m)
    else:
        vae_metrics(cols, cfg, m)
    st.caption(
        f"{cfg.get('arch')} encoder {' → '.join(map(str, hidden))} → {latent}-d code; "
        f"images {'×'.join(map(str, cfg.get('image_shape', [])))}"
    )
    if note := likelihood_note(cfg.get("likelihood"), cfg.get("binarize")):
        st.caption(f"Note: {note}")
    if hist:
        # An AE's test "ELBO" is its reconstruction term: its curve is named for what it is.
        test = "test −log p(x|ẑ)" if is_ae else "test −ELBO"
        st.line_chart(
            {"train loss": [e["loss"] for e in hist], test: [-e["test_elbo"] for e in hist]},
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
    is_ae = active.model.deterministic
    if is_ae:
        st.subheader("Decodings of N(0, I) codes")
        st.caption(
            "An AE has no prior: these are what its decoder makes of codes drawn from N(0, t² I), which it was "
            "never trained to decode (its codes lie wherever training put them). A VAE's samples come from the "
            "prior its KL term fitted the codes to."
        )
    else:
        st.subheader("Samples from the prior")
    c1, c2 = st.columns([3, 1])
    temperature = c1.slider(
        "Temperature (z ~ N(0, t² I))",
        0.0,
        2.0,
        1.0,
        0.05,
        key="home_temperature",
        help="Scales the codes' standard deviation."
        + ("" if is_ae else " Below 1 gives typical images, above 1 unusual ones."),
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
*test ELBO* and *IWAE* are in nats per image (higher is better); IWAE is the importance-weighted estimate
$\log \frac1k \sum_i p(x, z_i)/q(z_i\mid x)$, whose expectation is a tighter bound, between the ELBO and $\log p(x)$. *Active
units* are the latent dimensions whose average KL exceeds 0.01 nats: the ones the model actually uses.

An **AE** encodes $x$ to one point $\hat z$ and is trained on the reconstruction term alone: it has no $q(z\mid x)$,
no prior, no KL, no ELBO and no IWAE. Its card shows the test reconstruction log-likelihood $\log p(x\mid \hat z)$
and its curve $-\log p(x\mid \hat z)$; the grid above is what its decoder makes of $\mathcal N(0, I)$ codes.
"""
)
