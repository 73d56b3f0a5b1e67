"""VAE Explorer — home page: pick a model, read its card, sample from the prior.

Run with ``streamlit run app.py``.
"""

import streamlit as st
import torch

from ui.common import explain, page_header, show
from vae.images import tile

active = page_header(
    "VAE Explorer",
    "Train or load a Variational AutoEncoder, then see what it learned.",
    needs_data=False,
)

st.markdown(
    """
- **Train** — train a VAE or an AE in the background, with live loss curves and samples.
- **Latent sliders** — move each latent dimension and watch the decoder's image change.
- **Interpolate** — walk from one image to another in latent space: the VAE, the AE and a pixel cross-fade.
- **Latent map** — the encoded test set in 2-D (PCA, t-SNE); click a point to decode it.
- **Reconstruct** — upload images; see their reconstruction, ELBO and log-likelihood estimate.
"""
)

if active is not None:
    cfg, ckpt = active.config, active.ckpt
    m, hist = ckpt.metrics, ckpt.history.get("epochs", [])
    st.subheader(f"Model card · {active.name}")
    cols = st.columns(5)
    cols[0].metric("Data set", ckpt.dataset.get("name", "?"))
    cols[1].metric("Kind", cfg.kind.upper())
    cols[2].metric("Architecture", cfg.arch.upper(), help=f"hidden sizes {', '.join(map(str, cfg.hidden))}")
    cols[3].metric("Latent size", cfg.latent_dim)
    cols[4].metric("Epochs", len(hist))
    cols = st.columns(5)
    cols[0].metric("β", f"{cfg.beta:g}")
    cols[1].metric("Likelihood", cfg.likelihood + (" (binarized)" if cfg.binarize else ""))
    cols[2].metric("Test ELBO (nats)", f"{m['elbo']:.2f}" if m.get("elbo") is not None else "—")
    iw = f"{m['iwae']:.2f}" if m.get("iwae") is not None else "—"
    on = f", {m['iwae_n']:,} images" if m.get("iwae_n") else ""
    cols[3].metric(f"Test IWAE k={m.get('iwae_k', 0)}{on}", iw)
    au = m.get("active_units")
    cols[4].metric("Active units", f"{au} / {cfg.latent_dim}" if au is not None else "—")
    st.caption(
        f"{cfg.arch} encoder {' → '.join(map(str, cfg.hidden))} → {cfg.latent_dim}-d code; "
        f"images {'×'.join(map(str, cfg.image_shape))}"
    )
    if hist:
        st.line_chart(
            {"train loss": [e["loss"] for e in hist], "test −ELBO": [-e["test_elbo"] for e in hist]},
            height=200,
            x_label="epoch",
            y_label="nats/image",
        )

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
