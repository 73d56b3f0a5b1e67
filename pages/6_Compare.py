"""Compare: two to four models side by side on the same inputs (reconstructions, prior samples, one
interpolation, KL per dimension, the bounds) and the rate–distortion plot: what β trades."""

import streamlit as st

from services.compare import (
    MAX_MODELS,
    CompareError,
    check_comparable,
    prior_samples,
    rate_distortion,
    reconstructions,
    shared_inputs,
)
from services.explore import latent_path, moon_pair
from ui import compare as ui
from ui.common import Active, explain, page_header
from ui.compare_text import COMPARE
from vae.evaluate import ACTIVE_UNIT_NATS

N_MEASURED = 500  # test images behind every number; IWAE decodes k codes for each
N_SHOWN = 8
N_SPREAD = 20  # images behind the per-model Monte Carlo spread
STEPS = 9

active = page_header("Compare", "Two to four models side by side on the same inputs: what β trades.")
if active is None:
    explain(COMPARE)
    st.stop()

options = ui.picks()
chosen = st.multiselect(
    f"Models (two to {MAX_MODELS}, of one data set and image shape; by default the committed β sweep)",
    list(options),
    default=ui.default_labels(options, active.name),
    max_selections=MAX_MODELS,
    key="cmp_models",
)
if len(chosen) < 2:
    st.info("Pick two to four models above to compare them on the same inputs.")
    explain(COMPARE)
    st.stop()
try:
    check_comparable([options[c].candidate for c in chosen])
except CompareError as e:
    st.error(str(e))
    explain(COMPARE)
    st.stop()

c1, c2 = st.columns(2)
iwae_k = c1.select_slider("IWAE samples k per image", [10, 100, 1000], 100, key="cmp_iwae_k")
seed = int(c2.number_input("Seed of the shown images and the prior codes", 0, 10_000, 0, key="cmp_seed"))

models = []  # (label, model key, checkpoint)
for c in chosen:
    e = options[c].entry
    mtime = e.path.stat().st_mtime
    ckpt = ui.load(str(e.path), mtime)
    models.append((ui.model_label(e.name, ckpt.config.kind, ckpt.config.beta), f"{e.name}:{mtime}", ckpt))
first = Active(name=options[chosen[0]].entry.name, ckpt=models[0][2], key=models[0][1])
data = first.data
if data is None:
    st.warning(
        f"The data set of these models is not available here, so there is nothing to compare on. {first.data_note}"
    )
    st.stop()
if first.data_note and first.name != active.name:  # page_header already said it for the active model
    st.info(first.data_note)

# --------------------------------------------------------------------------- the numbers
x_measure = data.test_x[shared_inputs(data.test_x, N_MEASURED, seed=0)]
results = [
    ui.measured(f"{key}:{data.name}:{len(x_measure)}", key.rsplit(":", 1)[0], ckpt.model, x_measure, iwae_k, 0)
    for _, key, ckpt in models
]
st.subheader("Rate against distortion")
ae_lines = [(m.name, m.distortion) for m in results if m.rate is None]
st.plotly_chart(ui.rate_distortion_figure(rate_distortion(results), ae_lines), key="cmp_rd")
st.dataframe(ui.table(results, iwae_k), hide_index=True)
st.caption(
    f"Means over the same {len(x_measure):,} test images of {data.name}, in nats per image: ELBO, rate and "
    f"distortion with 10 draws z ~ q(z|x) each, IWAE with k = {iwae_k}. ELBO = −(distortion + rate). "
    "The model cards' figures cover the whole test set, with their own k."
)

st.subheader("The Monte Carlo estimate of the ELBO, per model")
L = st.select_slider("Samples L per estimate", [1, 10, 100], 10, key="cmp_mc_L")
x_mc = x_measure[:N_SPREAD]
spreads = [
    (label, ui.spread(f"{key}:{data.name}:{N_SPREAD}", ckpt.model, x_mc, L))
    for label, key, ckpt in models
    if ckpt.config.kind == "vae"
]
if spreads:
    st.dataframe(ui.spread_table(spreads), hide_index=True, key="cmp_mc")
    st.caption(
        f"Per image, (1/L) Σ [log p(x, z_l) − log q(z_l|x)] and (1/L) Σ log p(x|z_l) − KL(q(z|x) ‖ N(0, I)), "
        f"each drawn {spreads[0][1].repeats} times with z_l = μ + σ·ε_l; means over the first {N_SPREAD} of the "
        "images above, and the standard deviation of one estimate over the repeats, averaged over them. "
        "The gap IWAE − ELBO in the table above estimates KL(q(z|x) ‖ p(z|x))."
    )
else:
    st.caption("None of these models is a VAE: an AE has no q(z|x) to draw from.")

# --------------------------------------------------------------------------- the pictures
idx = shared_inputs(data.test_x, N_SHOWN, seed=seed)
x_shown = data.test_x[idx]
st.subheader("Reconstructions of the same test images")
st.caption("Each row decodes the posterior mean of the images in the top row.")
ui.image_rows([("test images", x_shown)] + [(label, reconstructions(ck.model, x_shown)) for label, _, ck in models])

st.subheader("Prior samples, the same codes for every model")
st.caption(
    f"Decodings of {2 * N_SHOWN} codes z ~ N(0, I) drawn with seed {seed}"
    + (
        "; an AE has no prior: its row is what its decoder makes of codes a VAE's prior would draw."
        if ae_lines
        else "."
    )
)
ui.image_rows([(label, prior_samples(ck.model, 2 * N_SHOWN, seed)) for label, _, ck in models], scale=2)

st.subheader("The same interpolation")
if data.name == "moons":  # the documents' example: a full moon and a half moon
    ia, ib = moon_pair(data.test_x, data.extra["test_phase"])
    what = "from a full moon to a half moon"
else:
    ia, ib = int(idx[0]), int(idx[-1])
    what = "between two of the shown test images"
st.caption(f"Each row decodes {STEPS} evenly spaced codes on the straight line between the posterior means, {what}.")
xa, xb = data.test_x[ia], data.test_x[ib]
ui.image_rows(
    [("ends A and B", data.test_x[[ia, ib]])]
    + [(label, latent_path(ck.model, xa, xb, STEPS)[1]) for label, _, ck in models]
)

st.subheader("KL per dimension and active units")
vaes = [(ui.model_label(m.name, m.kind, m.beta), m.kl_dims.numpy()) for m in results if m.kind == "vae"]
if vaes:
    st.plotly_chart(ui.kl_bars_figure(vaes, ACTIVE_UNIT_NATS), key="cmp_kl")
    st.caption(
        " · ".join(f"{m.name}: {m.active_units} / {m.latent_dim} active" for m in results if m.kind == "vae")
        + (" · an AE has no KL per dimension." if ae_lines else "")
    )
else:
    st.caption("None of these models is a VAE: an AE has no KL per dimension.")

explain(COMPARE)
