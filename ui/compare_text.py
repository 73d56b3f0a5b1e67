# Markdown and LaTeX lines are kept whole, however long.
# ruff: noqa: E501
"""The Compare page's "What am I seeing?" text (Markdown with $LaTeX$), in the design documents' notation."""

from vae.evaluate import ACTIVE_UNIT_NATS

COMPARE = r"""
Every model here saw **the same test images** and, where latent sizes agree, **the same random codes**: the
same reconstructions to make, the same prior draws $z \sim \mathcal N(0, I)$ (one seed), the same two end
images to walk between.

**Rate and distortion.** The bound the documents derive is

$$\mathrm{ELBO} = \mathbb E_{q(z\mid x)}[\log p(x\mid z)] - \mathrm{KL}\big(q(z\mid x)\,\|\,\mathcal N(0, I)\big).$$

Call its two parts, averaged over the test images, the *distortion* $D = -\mathbb E_{q(z\mid x)}[\log p(x\mid z)]$
(how badly the code reconstructs $x$) and the *rate* $R = \mathrm{KL}(q(z\mid x)\,\|\,\mathcal N(0, I))$ (how many nats
the code carries about $x$ beyond the prior). Then $\mathrm{ELBO} = -(D + R)$: on the plot every dotted diagonal
$D + R = \text{const}$ is a line of equal ELBO. Lower-left is better; the ELBO is measured with weight 1 on the
KL whatever β the model was trained with.

**What β trades.** A β-VAE minimises

$$-\mathbb E_{q(z\mid x)}[\log p(x\mid z)] + \beta\,\mathrm{KL}\big(q(z\mid x)\,\|\,\mathcal N(0, I)\big) = D + \beta R,$$

so β is the price of one nat of rate in nats of distortion; β = 1 is the ELBO itself.

- **β < 1**: rate is cheap. The codes carry more about each image (higher $R$, more active units), the
  reconstructions are sharper (lower $D$), but the posteriors $q(z\mid x)$ move away from $\mathcal N(0, I)$, so codes
  drawn from the prior fall where no image was encoded and the prior samples get worse.
- **β > 1**: rate is dear. The codes are pushed towards the prior: more prior-like codes, better-covered prior,
  blurrier reconstructions, **fewer active units** (the bars: dimensions whose mean KL is under ACTIVE_UNIT_NATS nats carry
  nothing, $q(z_j\mid x) \approx \mathcal N(0, 1)$ for every $x$). Far enough, **posterior collapse**: $R \to 0$,
  $q(z\mid x) = \mathcal N(0, I)$ for every image and the decoder draws the average image whatever $z$ is.

**β and the Gaussian decoder's weight λ = σ².** With a Gaussian decoder $p(x\mid z) = \mathcal N(x;\, \mu(z),\, \sigma^2 I)$
over $n$ pixels, $\log p(x\mid z) = -\frac{\lVert x - \mu(z)\rVert^2}{2\sigma^2} - \frac n2 \log(2\pi\sigma^2)$, so up to constants the loss is

$$\frac{\mathbb E_{q(z\mid x)}\lVert x - \mu(z)\rVert^2}{2\sigma^2} + \mathrm{KL}\big(q(z\mid x)\,\|\,\mathcal N(0, I)\big).$$

Multiplying it by σ² does not move its minimum: $\tfrac12\,\mathbb E_q\lVert x - \mu(z)\rVert^2 + \sigma^2\,\mathrm{KL}$. This is
document 003's objective, $-\tfrac12\lVert x - \mu_\theta\rVert^2 - \lambda\,\mathrm{KL}$ for $p(x\mid z) = \mathcal N(\mu_\theta, \lambda I)$: the
weight λ of the KL against the MSE **is** the decoder's variance, λ = σ². So multiplying the KL by β is the same as
a Gaussian decoder whose variance σ² is scaled by β: β > 1 says the images are noisier than they are (blur is
forgiven), β < 1 that they are sharper. The moons models here use a Bernoulli decoder, which has no σ: β is then the
knob itself.

**The bounds.** $\log p(x) \ge \mathrm{IWAE}_k \ge \mathrm{ELBO}$ in expectation; IWAE averages $k$ importance weights
$p(x, z_i)/q(z_i\mid x)$, $z_i \sim q(z\mid x)$, and tightens as $k$ grows. The table measures both on the images named
below it.

**An AE** has a point code: there is no $q(z\mid x)$ with a density, no KL (its rate is unbounded), no ELBO and no IWAE;
only its reconstruction term, drawn as a dashed line at its distortion. Its row of "prior samples" is what its
decoder makes of codes drawn from $\mathcal N(0, I)$, a distribution it was never trained to match.
""".replace("ACTIVE_UNIT_NATS", f"{ACTIVE_UNIT_NATS:g}")  # the one threshold, vae.evaluate's
