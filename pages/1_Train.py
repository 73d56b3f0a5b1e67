"""Train: a VAE or an AE, in the background, with live curves, reconstructions and samples."""

import streamlit as st

from services.jobs import MANAGER
from ui import job_panel, train_form
from ui.common import explain, page_header

page_header(
    "Train", "Train a VAE or an AE in the background: it keeps going when you change page or reload.", model=False
)

# Runs first: after a reload a running job is what one came back for, so the form folds away below it.
runs, notice = st.container(), st.container()
with st.expander("New training run", expanded=not any(j.active for j in MANAGER.jobs())):
    dataset, data_values, problem = train_form.data_choice()
    values, name, start = train_form.settings(blocked=problem is not None)

if start:
    train_form.start(notice, dataset, {**data_values, **values}, name)
job_panel.runs(runs)

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
