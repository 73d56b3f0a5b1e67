"""The Mixtures page's caches and plotly figures: a finite Gaussian mixture beside a VAE's infinite one."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from services import mixture
from ui.figures import MARGIN, palette

DATA_COLOUR = "#b2bec3"
MODEL_COLOUR = "#e84118"
TRUE_COLOUR = "#2d3436"
SEED = 0
# Headings are Markdown with LaTeX, as in the panels; plotly draws no TeX, so its titles and legends use unicode.
GMM_HEADING = r"$p(x) = \sum_k \pi_k\, \mathcal N(x;\, \mu_k, \sigma_k^2)$"
VAE_HEADING = r"$p(x) = \int \mathcal N(x;\, \mu(z), \sigma^2)\, \mathcal N(z;\, 0, 1)\, dz$"
GMM_SAMPLING = "Pick k ∼ π, then x ∼ N(μₖ, σₖ²)"
VAE_SAMPLING = "z ∼ N(0, 1), then x ∼ N(μ(z), σ²)"


LEGEND_PARTS = 5  # components named one by one in a density figure's legend; more share one entry
TEST_LL = "The mean log p(x) of 2,000 held-out draws, in nats per point (higher is better)."
DECODER_NOTE = (
    r"Each code $z$ gives one Gaussian $\mathcal N(x;\, \mu(z), \sigma^2)$; the dots are the prior quantiles $z_i$."
)
TEST_ELBO = "The mean one-sample ELBO of the same draws, in nats per point: a lower bound on their log p(x)."


def gmm_heading(k: int) -> str:
    """The finite mixture's heading (its density, in LaTeX, goes on the line below: KaTeX does not wrap)."""
    return f"{k} Gaussian{'s' if k > 1 else ''}"


def component_names(gm: mixture.GaussianMixture) -> list[str]:
    """Each component's legend entry: its weight, mean and standard deviation, in plain unicode."""
    return [f"π={w:.2f} · N({m:.2f}, {s:.2f}²)" for w, m, s in zip(gm.weights, gm.means, gm.stds, strict=True)]


def em_note(gm: mixture.GaussianMixture) -> str:
    """Whether EM converged (an EM step raised the training log-likelihood by less than its tolerance), after
    how many steps, and the log-likelihood it climbed from and to."""
    h = gm.history
    climb = f"training log-likelihood {h[0]:.3f} → {h[-1]:.3f} nats per point"
    if gm.converged:
        return f"EM converged after {gm.steps} steps (the last raised it by less than {gm.tol:g}): {climb}."
    last = h[-1] - h[-2] if len(h) > 1 else float("nan")
    return (
        f"EM stopped at its limit of {gm.steps} steps without converging: the last step still raised the "
        f"log-likelihood by {last:.1e} (tolerance {gm.tol:g}); {climb}."
    )


@st.cache_resource(show_spinner=False)
def toy() -> mixture.Toy:
    """The seeded toy data set, drawn once per process."""
    return mixture.toy_data(seed=SEED)


@st.cache_resource(show_spinner="Fitting the mixture by EM…", max_entries=16)
def gmm(k: int) -> mixture.GaussianMixture:
    """The K-component mixture fitted to the toy's training draws (deterministic: cached per K)."""
    return mixture.fit_gmm(toy().train, k)


@st.cache_resource(show_spinner="Training the tiny VAE (a few seconds, once)…")
def vae() -> mixture.TrainedVAE:
    """The tiny VAE trained on the toy's training draws, seeded: the same model every time."""
    return mixture.train_vae(toy().train, seed=SEED)


def _histogram(x: torch.Tensor, name: str, colour: str, bins: np.ndarray, opacity: float = 0.55) -> go.Histogram:
    return go.Histogram(
        x=x.numpy(),
        xbins={"start": float(bins[0]), "end": float(bins[-1]), "size": float(bins[1] - bins[0])},
        histnorm="probability density",
        name=name,
        marker_color=colour,
        opacity=opacity,
    )


def _bins(grid: torch.Tensor, n: int = 70) -> np.ndarray:
    return np.linspace(float(grid[0]), float(grid[-1]), n + 1)


def _layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(
        title=title,
        height=height,
        margin={**MARGIN, "t": 40},
        xaxis_title="x",
        yaxis_title="density",
        barmode="overlay",
        legend={"orientation": "h", "y": -0.28, "yanchor": "top"},  # below the x axis title, not on it
    )
    return fig


def density_figure(
    data: mixture.Toy,
    density: torch.Tensor,
    components: torch.Tensor,
    component_names: list[str],
    title: str,
    height: int = 380,
) -> go.Figure:
    """The training histogram, the true density (dashed), the model's p(x) on the grid (G,) and its
    components (C, G), one thin line each. Up to LEGEND_PARTS components get a legend entry each; more share
    one (each is named on hover): a long legend squashed the plot and scrolled in a narrow column."""
    x = data.grid.numpy()
    fig = go.Figure(_histogram(data.train, "training data", DATA_COLOUR, _bins(data.grid)))
    each = len(components) <= LEGEND_PARTS
    for curve, name, colour in zip(components, component_names, palette(len(components)), strict=True):
        line = {"width": 1.2, "color": colour}
        fig.add_trace(go.Scatter(x=x, y=curve.numpy(), mode="lines", name=name, line=line, legendgroup="parts"))
        fig.data[-1].showlegend = each
    if not each:  # one legend entry for the group (clicking it hides or shows them all)
        label = f"{len(components)} components (hover for each)"
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=label, legendgroup="parts", line=line))
    fig.add_trace(
        go.Scatter(
            x=x, y=data.density.numpy(), mode="lines", name="true p(x)", line={"dash": "dash", "color": TRUE_COLOUR}
        )
    )
    fig.add_trace(
        go.Scatter(x=x, y=density.numpy(), mode="lines", name="model p(x)", line={"width": 3, "color": MODEL_COLOUR})
    )
    return _layout(fig, title, height)


def samples_figure(data: mixture.Toy, samples: torch.Tensor, density: torch.Tensor, title: str, height: int = 320):
    """A histogram of the model's samples (N,) over the training histogram, with the model's p(x) (G,)."""
    bins = _bins(data.grid)
    fig = go.Figure(_histogram(data.train, "training data", DATA_COLOUR, bins, opacity=0.4))
    fig.add_trace(_histogram(samples, f"{len(samples):,} samples", MODEL_COLOUR, bins, opacity=0.5))
    fig.add_trace(
        go.Scatter(
            x=data.grid.numpy(), y=density.numpy(), mode="lines", name="model p(x)", line={"color": MODEL_COLOUR}
        )
    )
    return _layout(fig, title, height)


def decoder_figure(model: mixture.TinyVAE, marks: torch.Tensor, height: int = 260) -> go.Figure:
    """The decoder's mean μ(z) over z ∈ [−3, 3], with the prior quantiles ``marks`` (n,) whose components
    are drawn on the density figure."""
    z = torch.linspace(-3, 3, 200, dtype=torch.float64)
    with torch.no_grad():
        mu, mu_marks = model.mu(z), model.mu(marks)
    fig = go.Figure(go.Scatter(x=z.numpy(), y=mu.numpy(), mode="lines", name="μ(z)", line={"color": MODEL_COLOUR}))
    fig.add_trace(
        go.Scatter(
            x=marks.numpy(),
            y=mu_marks.numpy(),
            mode="markers",
            name="zᵢ at prior quantiles",
            marker={"color": palette(len(marks)), "size": 9},
        )
    )
    fig.update_layout(
        title="The decoder's mean μ(z)",  # plotly draws no TeX (unicode), nor wraps a title: a short one
        height=height,
        margin={**MARGIN, "t": 40},
        xaxis_title="z (prior N(0, 1))",
        yaxis_title="μ(z)",
        showlegend=False,
    )
    return fig


# Markdown and LaTeX lines are kept whole.
EXPLAIN = r"""
A generative model does two things: it gives a **density** $p(x)$ (how likely is this point?) and it **draws
samples** $x \sim p(x)$. Both panels model the same 1-D data (the histogram; the dashed line is the true density,
known here because the toy is made from a Gamma(2) bump and two Gaussians).

**Left: a Gaussian mixture of $K$ components**, $p(x) = \sum_{k=1}^{K} p(k)\, p(x \mid k)
= \sum_k \pi_k\, \mathcal N(x;\, \mu_k, \sigma_k^2)$, fitted by EM: the E-step computes each point's
responsibilities $p(k \mid x_n) \propto \pi_k \mathcal N(x_n; \mu_k, \sigma_k^2)$, the M-step re-estimates
$\pi_k, \mu_k, \sigma_k^2$ from them; each EM step never lowers the training log-likelihood. The thin lines are the
weighted components $\pi_k \mathcal N(x; \mu_k, \sigma_k^2)$: they add up to $p(x)$. Sampling is ancestral: pick
$k \sim \pi$, then $x \sim \mathcal N(\mu_k, \sigma_k^2)$.

**Right: an infinite mixture.** Replace the discrete $k$ by a continuous code $z$ with prior $p(z) = \mathcal N(0, 1)$
and let a network give each code its own mean: $p(x \mid z) = \mathcal N(x;\, \mu(z), \sigma^2)$. The sum becomes
an integral,

$$p(x) = \sum_k p(k)\, p(x \mid k) \;\longrightarrow\; p(x) = \int p(z)\, p(x \mid z)\, dz,$$

a mixture of infinitely many Gaussians, one per $z$ (the small chart draws $\mu(z)$). The decoder $\mu(z)$
(an MLP 1 → 32 → 32 → 1) and $\sigma$ were trained with an encoder $q(z \mid x) = \mathcal N(m(x), s(x)^2)$
by maximising the ELBO

$$\log p(x) \;\ge\; \mathrm{ELBO} = \mathbb E_{q(z \mid x)}\big[\log p(x \mid z)\big]
\qquad - \mathrm{KL}\big(q(z \mid x)\,\|\,\mathcal N(0, 1)\big),$$

with one sample $z = m(x) + s(x)\,\varepsilon$ per point (1,500 Adam steps, seeded). Here $z$ is 1-D, so the
integral can be computed: by **quadrature at $M = 2000$ prior quantiles** $z_i = \Phi^{-1}\big((i - \tfrac12)/M\big)$,
$p(x) \approx \frac1M \sum_i \mathcal N(x; \mu(z_i), \sigma^2)$, an equal-weight mixture of $M$ Gaussians. The thin
lines are a few of them, $\mathcal N(x; \mu(z_i), \sigma^2)/n$ for $n$ quantiles: as $n$ grows, their sum tends
to $p(x)$. For images, $z$ has tens of dimensions and this integral is out of reach: that is why the VAE trains
on the ELBO. Sampling is ancestral again: $z \sim \mathcal N(0, 1)$, then $x \sim \mathcal N(\mu(z), \sigma^2)$.

**The numbers.** *Test log-likelihood* is the mean $\log p(x)$ over 2,000 held-out draws, in nats per point
(higher is better; the true density scores it too). The VAE's test ELBO is below its $\log p(x)$: the gap is the
mean $\mathrm{KL}(q(z \mid x)\,\|\,p(z \mid x))$ the encoder leaves (with one-sample noise).
"""
