"""Mixtures: the design documents' step from a Gaussian mixture to a VAE (003). The same 1-D toy data modelled
by a K-component mixture fitted by EM and by a tiny VAE, p(x) = ∫ N(x; μ(z), σ²) N(z; 0, 1) dz: density
estimation and sampling side by side. Needs no checkpoint."""

import streamlit as st
import torch

from services import mixture
from ui import mixture as ui_mx
from ui.common import explain, page_header

page_header(
    "From a Gaussian mixture to an infinite one",
    "A generative model does two things: density estimation p(x) and sampling. Left, K Gaussians; right, a VAE's "
    "infinitely many, one per code z.",
    model=False,
)

data = ui_mx.toy()
trained = ui_mx.vae()
vae = trained.model
SAMPLES = len(data.train)
COMPONENTS_SHOWN = 9

c1, c2 = st.columns([3, 1])
k = c1.slider("K, the mixture's components", 1, 10, 3, key="mx_k", help="EM refits the mixture for each K.")
if c2.button("Resample", key="mx_resample", help="Draw new samples from both models."):
    st.session_state["mx_draw"] = st.session_state.get("mx_draw", 0) + 1
draw = st.session_state.get("mx_draw", 0)

gm = ui_mx.gmm(k)
gm_density = gm.log_prob(data.grid).exp()
vae_density = mixture.vae_log_prob(vae, data.grid).exp()
marks, vae_parts = mixture.vae_components(vae, data.grid, COMPONENTS_SHOWN)
true_ll = float(torch.log(mixture.toy_density(data.test)).mean())

left, right = st.columns(2)
with left:
    st.subheader(ui_mx.gmm_heading(k))
    st.markdown(ui_mx.GMM_HEADING)
    names = ui_mx.component_names(gm)
    fig = ui_mx.density_figure(data, gm_density, gm.components(data.grid), names, "Density estimation")
    st.plotly_chart(fig, key="mx_gmm_density")
    st.metric("Test log p(x)", f"{float(gm.log_prob(data.test).mean()):.3f}", help=ui_mx.TEST_LL)
    st.caption(f"{ui_mx.em_note(gm)} The true density scores {true_ll:.3f} on the same test points.")
with right:
    st.subheader("Infinitely many: one per z")
    st.markdown(ui_mx.VAE_HEADING)
    names = [f"z={z:+.2f}" for z in marks.tolist()]
    fig = ui_mx.density_figure(data, vae_density, vae_parts, names, "Density (quadrature over z)")
    st.plotly_chart(fig, key="mx_vae_density")
    m1, m2 = st.columns(2)
    m1.metric("Test log p(x)", f"{float(mixture.vae_log_prob(vae, data.test).mean()):.3f}", help=ui_mx.TEST_LL)
    m2.metric("Test ELBO", f"{mixture.vae_test_elbo(vae, data.test):.3f}", help=ui_mx.TEST_ELBO)
    st.caption(
        f"σ = {vae.sigma:.3f}; trained in {trained.seconds:.1f} s ({len(trained.history):,} Adam steps) when the "
        f"page first opened. Thin lines: N(x; μ(zᵢ), σ²)/{COMPONENTS_SHOWN} at {COMPONENTS_SHOWN} prior quantiles."
    )
    st.plotly_chart(ui_mx.decoder_figure(vae, marks), key="mx_decoder")
    st.caption(ui_mx.DECODER_NOTE)

st.subheader(f"Sampling: {SAMPLES:,} draws from each model")
left, right = st.columns(2)
gen = torch.Generator().manual_seed(1000 + draw)
with left:
    x = gm.sample(SAMPLES, gen)
    st.plotly_chart(ui_mx.samples_figure(data, x, gm_density, ui_mx.GMM_SAMPLING), key="mx_gmm_samples")
with right:
    x = mixture.vae_sample(vae, SAMPLES, gen)
    st.plotly_chart(ui_mx.samples_figure(data, x, vae_density, ui_mx.VAE_SAMPLING), key="mx_vae_samples")
st.caption(f"Draw {draw + 1} (seed {1000 + draw}). Resample draws again from both models.")

explain(ui_mx.EXPLAIN)
