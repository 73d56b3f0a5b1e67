"""Compare: two to four models side by side on the same inputs (reconstructions, prior samples, one
interpolation, KL per dimension, the bounds) and the rate–distortion plot: what β trades."""

import streamlit as st

from services.compare import prior_samples, rate_distortion, reconstructions, shared_inputs
from services.explore import example_ends, has_example_pair, latent_path
from ui import compare as ui
from ui.common import explain, page_header
from ui.compare_text import COMPARE
from ui.state import scoped
from vae.evaluate import ACTIVE_UNIT_NATS

N_MEASURED = 500  # test images behind every number; IWAE decodes k codes for each
N_SHOWN = 8
N_SPREAD = 20  # images behind the per-model Monte Carlo spread
STEPS = 9

active = page_header("Compare", "Two to four models side by side on the same inputs: what β trades.")
models = None if active is None else ui.choose(active)
if not models:
    explain(COMPARE)
    st.stop()

c1, c2 = st.columns(2)
iwae_k = c1.select_slider("IWAE samples k per image", [10, 100, 1000], 100, key=scoped("cmp_iwae_k", active))
seed_label = "Seed of the shown images and the prior codes"
seed = int(c2.number_input(seed_label, 0, 10_000, 0, key=scoped("cmp_seed", active)))

first = models[0]
data = first.data
if data is None:
    st.warning(
        f"The data set of these models is not available here, so there is nothing to compare on. {first.data_note}"
    )
    st.stop()
if first.data_note and first.name != active.name:  # page_header already said it for the active model
    st.info(first.data_note)
labels = [ui.label_of(m) for m in models]

# --------------------------------------------------------------------------- the numbers
x_measure = data.test_x[shared_inputs(data.test_x, N_MEASURED, seed=0)]
results = ui.measure_all(models, x_measure, iwae_k)
st.subheader("Rate against distortion")
ae_lines = [(m.name, m.distortion) for m in results if m.rate is None]
st.plotly_chart(ui.rate_distortion_figure(rate_distortion(results), ae_lines), key="cmp_rd")
st.dataframe(ui.table(results, iwae_k), hide_index=True)
st.caption(
    f"Means over the same {len(x_measure):,} test images of {data.name}, in nats per image: ELBO, rate and "
    f"distortion with 10 draws $z \\sim q(z\\mid x)$ each, IWAE with $k = {iwae_k}$. ELBO $= -(D + R)$. "
    "The model cards' figures cover the whole test set, with their own k."
)

st.subheader("The Monte Carlo estimate of the ELBO, per model")
ui.mc_section(active, models, x_measure[:N_SPREAD])

# --------------------------------------------------------------------------- the pictures
idx = shared_inputs(data.test_x, N_SHOWN, seed=seed)
x_shown = data.test_x[idx]
st.subheader("Reconstructions of the same test images")
st.caption("Each row decodes the posterior mean of the images in the top row.")
ui.image_rows([("test images", x_shown)] + [(lb, reconstructions(m.model, x_shown)) for lb, m in zip(labels, models)])

st.subheader("Prior samples, the same codes for every model")
no_prior = "; an AE has no prior: its row is what its decoder makes of codes a VAE's prior would draw."
st.caption(
    f"Decodings of {2 * N_SHOWN} codes $z \\sim \\mathcal N(0, I)$ drawn with seed {seed}"
    + (no_prior if ae_lines else ".")
)
ui.image_rows([(lb, prior_samples(m.model, 2 * N_SHOWN, seed)) for lb, m in zip(labels, models)], scale=2)

st.subheader("The same interpolation")
is_moons = has_example_pair(data)  # the documents' full moon and half moon, from the data-set registry
ia, ib = example_ends(data, default=(int(idx[0]), int(idx[-1])))
what = "from a full moon to a half moon" if is_moons else "between two of the shown test images"
st.caption(f"Each row decodes {STEPS} evenly spaced codes on the straight line between the posterior means, {what}.")
xa, xb = data.test_x[ia], data.test_x[ib]
paths = [(lb, latent_path(m.model, xa, xb, STEPS)[1]) for lb, m in zip(labels, models)]
ui.image_rows([("ends A and B", data.test_x[[ia, ib]])] + paths)

st.subheader("KL per dimension and active units")
vaes = [(ui.label_of(m), m.kl_dims.numpy()) for m in results if m.kind == "vae"]
if vaes:
    st.plotly_chart(ui.kl_bars_figure(vaes, ACTIVE_UNIT_NATS), key="cmp_kl")
    st.caption(
        " · ".join(f"{m.name}: {m.active_units} / {m.latent_dim} active" for m in results if m.kind == "vae")
        + (" · an AE has no KL per dimension." if ae_lines else "")
    )
else:
    st.caption("None of these models is a VAE: an AE has no KL per dimension.")

explain(COMPARE)
