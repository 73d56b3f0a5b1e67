# Markdown and LaTeX lines are kept whole (as they were in the pages), however long.
# ruff: noqa: E501
"""The pages' "What am I seeing?" texts (Markdown with $LaTeX$), kept out of the pages' layout code."""

SLIDERS = r"""
Each slider sets one coordinate of a code $z \in \mathbb R^{D}$; the image is the decoder's mean
$\mathbb E[x \mid z]$ (for a Bernoulli decoder, the pixel probabilities). The sliders are ordered by how much
each dimension is used: its average KL over the test set,

$$\mathrm{KL}_j = \mathbb E_x\Big[\tfrac12\big(\sigma_j^2(x) + \mu_j^2(x) - 1 - \log \sigma_j^2(x)\big)\Big],$$

one term of the closed-form $\mathrm{KL}(q(z\mid x)\,\|\,\mathcal N(0, I))$. A dimension with $\mathrm{KL}_j \approx 0$ has
$q(z_j\mid x) = \mathcal N(0, 1)$ for every image: it carries no information and the decoder learns to ignore it
(an *inactive unit*). Because training adds noise $z = \mu + \sigma\,\varepsilon$ (the reparameterization), nearby
codes must decode to similar images, so the sliders move smoothly. The *2-D pad* moves two chosen dimensions at
once. The decoder runs in your browser (exported to ONNX, run by ONNX Runtime Web), so the image follows the
mouse; the server hears the code when you let go, for the download and the traversals. A *traversal* varies one
dimension from −3 to +3 prior standard deviations with the others held at that code; the grid does it for every
active dimension, one row each.

Started from an *encoded test image*, the sliders sit at the posterior mean $\mu(x)$, but the encoder gives
a distribution, $q(z\mid x) = \mathcal N\big(\mu(x), \operatorname{diag}\sigma^2(x)\big)$: each slider's shaded band
spans $\mu_j \pm \sigma_j$ (one standard deviation; the tick is $\mu_j$), where the noisy codes of that image fall in
training. *Draw z ~ q(z|x)* sets the sliders to a sample $z = \mu + \sigma \odot \varepsilon$,
$\varepsilon \sim \mathcal N(0, I)$: a narrow band is a dimension the image pins down, a band as wide as the prior
($\sigma_j \approx 1$, $\mu_j \approx 0$) one it leaves free.
"""

SLIDERS_AE = r"""
Each slider sets one coordinate of a code $z \in \mathbb R^{D}$; the image is what the decoder makes of it.
An autoencoder's codes lie wherever training put them, so each slider spans the range its test codes cover
(a little wider). The sliders are ordered by the variance of each coordinate over the test codes: a coordinate that
barely varies carries little information. Nothing in an autoencoder's training asks nearby codes to decode to
similar images, so codes away from the training codes can decode to nonsense: compare with a VAE on the same
data. The *2-D pad* moves two chosen dimensions at once. The decoder runs in your browser (exported to ONNX, run
by ONNX Runtime Web), so the image follows the mouse; the server hears the code when you let go, for the
download and the traversals. A *traversal* varies one dimension over its slider's range with the others held at
that code; the grid does it for every used dimension, one row each.
"""

INTERPOLATE = r"""
Both models encode A and B to codes $z_A, z_B$ (the posterior means $\mu$) and decode the points in between:
linearly, $z_t = (1-t)\,z_A + t\,z_B$, or along a great circle (*slerp*). The bottom row blends pixels instead.

An **AE** only learns to reconstruct its training codes: nothing tells the decoder what to do *between* them, so the
midpoint of a full moon and a half moon can decode to nonsense. A **VAE** is trained on noisy codes,
$z = \mu + \sigma \odot \varepsilon,\ \varepsilon \sim \mathcal N(0, I)$ (the reparameterization), and the KL term
$\mathrm{KL}(q(z\mid x)\,\|\,\mathcal N(0, I))$ keeps those noise clouds overlapping. Codes in the overlap must decode to
something like *both* moons — a moon in between, a gibbous moon.

On moons each frame is named by the **moon that fits it best**: the data set's own renderer, its phase $\varphi$,
size, place, tilt and brightness fitted to the frame by gradient descent. Its caption gives the phase's name, the
lit fraction $(1-\cos\varphi)/2$ of the disk (100 % full, 50 % half) and the fit's RMS pixel error: above 0.10 (99 %
of real test moons, craters and noise included, fit within 0.096) **no moon fits** — the AE's midpoint, like a
cross-fade, has two lit levels that no moon has. Whether the light is on the waxing or the waning side is often
unclear near full moon, where it is a pixel-wide rim; such frames are called just *gibbous*.

**The moon argument, in the latent space** draws a plane through $z_A$ and $z_B$ (its second axis is the data
codes' main spread across the first): every training moon's code, coloured by its phase, the path, and for the
VAE the $\pm1\sigma$ and $\pm2\sigma$ ellipses of $q(z\mid x_A)$ and $q(z\mid x_B)$ and the $\pm1\sigma$ ellipses
of the codes nearest the path — the projection $W^\top \operatorname{diag}(\sigma^2)\, W$ of each posterior's
covariance onto the plane's two unit vectors $W$. For each step $z_t$ the table says **whose noise covers it**:
how many training codes hold $z_t$ inside the 95 % region of their $q(z\mid x_i)$ (all $D$ dimensions,
$\sum_j (z_j-\mu_{ij})^2/\sigma_{ij}^2 \le \chi^2_{D,0.95}$), and which phase gives most of the density there under
the aggregate posterior $q(z) = \frac1N\sum_i q(z\mid x_i)$. The AE's codes are points: no noise covers anything
between them, and the table gives each step's distance to the nearest code in units of the codes' usual spacing.

The chart shows, per path, the RMS pixel distance $d$ of each frame to the nearest training image, each code's
distance to the nearest encoded training image and, for a VAE, its prior log-density $\log \mathcal N(z; 0, I)$
(an AE has no prior). Where
a model's training images are not on this machine (MNIST from the test set shipped with the code), both distances
are to the nearest *test* image instead, A and B themselves left out: both ends are then measured alike, to the
nearest image other than themselves, as an upload or a test moon is.

The **scrubber** decodes $z_t$ for any $t \in [0, 1]$ in your browser as you drag (the same linear or slerp
path, for each model), so you can watch the AE leave the data where the VAE stays on it; on release the page
measures that frame.
"""

LATENT_MAP = r"""
Each dot is one **test image** $x$, placed by its code: the **posterior mean** $\mu_\phi(x)$ of the encoder's
$q_\phi(z \mid x) = \mathcal N\big(\mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x)\big)$ (for an AE, its one
deterministic code). Colours are the true labels, which the model never saw: classes that come out as separate
islands were separated by the model on its own.

The codes live in $\mathbb R^{D}$; the map needs two coordinates.

<!-- projections -->

Why VAE and AE maps differ: the VAE's objective

$$\mathrm{ELBO}(x) = \mathbb E_{q(z\mid x)}[\log p(x\mid z)] - \mathrm{KL}\big(q(z\mid x)\,\|\,\mathcal N(0, I)\big)$$

pulls every code toward the prior $\mathcal N(0, I)$ and makes it noisy ($z = \mu + \sigma\varepsilon$), so codes fill
a compact ball with no empty gaps and classes sit side by side, even overlapping where images are ambiguous.
An AE has no KL term: its codes can spread out, and classes tend to overlap less — but the space between them
decodes to nothing in particular, which is why sampling from an AE fails.

**Hovering** decodes the position under the mouse in your browser where the projection has an inverse: a
position on a linear map is the code on the map's plane (for raw codes, the code itself). A t-SNE position has
no code, so nothing is decoded.

**Clicking a point** decodes its code $\mu_\phi(x)$: the decoder's mean $\mathbb E[x \mid z = \mu_\phi(x)]$ next to the
original, and the test images whose codes are nearest to it in $\mathbb R^{D}$ (Euclidean).

**Posterior ellipses.** A code is a distribution, not a point: the clicked image's
$q_\phi(z \mid x) = \mathcal N(\mu, \operatorname{diag}\sigma^2)$ is drawn as its $\pm 1\sigma$ (solid) and
$\pm 2\sigma$ (dashed) ellipses in the shown plane: a linear map $y = W(z - \bar\mu)$ sends it to a Gaussian with
covariance $W \operatorname{diag}(\sigma^2)\, W^\top$, whose eigenvalues are the squared semi-axes and eigenvectors
their directions. A map that is not linear (t-SNE) has no ellipses. The option **every point's ±1σ ellipse**
draws the noise clouds of all shown codes: where they overlap, the decoder was trained on codes from several
images, so the codes in between decode to something (the full-moon / half-moon argument). An AE has
$\sigma = 0$: no clouds, and nothing in between is trained. The rings mark the clicked image's nearest codes in
$\mathbb R^{D}$: on a map that keeps neighbourhoods (t-SNE) they sit close to it, on a linear one they may not.
"""

RECONSTRUCT = r"""
Each image is **preprocessed** the way the model's training data were (the row of small images):
orientation from EXIF, transparency flattened onto the background its visible pixels contrast with (black under
light content, so a white ring drawn on transparency stays a ring; white otherwise), grey (or RGB), inverted if its
background is light while the data's is dark, then cropped / centred / resized to the model's input size.

The **reconstruction** decodes the posterior mean: $\hat x = \mathbb E[p_\theta(x \mid z = \mu_\phi(x))]$,
where $q_\phi(z\mid x) = \mathcal N(\mu, \operatorname{diag}\sigma^2)$ is the encoder. The **error map** shows
$|x - \hat x|$ per pixel (black 0, yellow 1).

The **ELBO** is a lower bound on the image's log-likelihood, in nats per image (higher is better). Write
$\log p(x)$ as an expectation under the encoder's $q(z\mid x)$ and apply Jensen's inequality ($\log$ is concave):

$$\log p(x) = \log \mathbb E_{q(z\mid x)}\!\left[\frac{p(x, z)}{q(z\mid x)}\right] \;\ge\; \mathbb E_{q(z\mid x)}\big[\log p(x, z) - \log q(z\mid x)\big] = \mathbb E_{q(z\mid x)}[\log p(x\mid z)] - \mathrm{KL}\big(q(z\mid x)\,\|\,p(z)\big),$$

with $p(x, z) = p(x\mid z)\,p(z)$ and the prior $p(z) = \mathcal N(0, I)$. The slack Jensen leaves is exactly
$\log p(x) - \mathrm{ELBO}(x) = \mathrm{KL}\big(q(z\mid x)\,\|\,p(z\mid x)\big) \ge 0$: how far the encoder's
posterior is from the true one. The first term rewards a good reconstruction; the **KL** says how many nats the
code of this image costs against the prior (in closed form for two Gaussians).

**Monte Carlo.** With $L$ samples $z^{(l)} = \mu + \sigma \odot \varepsilon^{(l)}$, $\varepsilon^{(l)} \sim \mathcal N(0, I)$,

$$\mathrm{ELBO}(x) \approx \frac1L \sum_{l=1}^{L} \big[\log p(x, z^{(l)}) - \log q(z^{(l)}\mid x)\big] \qquad\text{or}\qquad \frac1L \sum_{l=1}^{L} \log p(x\mid z^{(l)}) - \mathrm{KL}\big(q(z\mid x)\,\|\,p(z)\big).$$

Both are unbiased estimates of the same ELBO; their spread over repeats shrinks like $1/\sqrt L$. The second
takes the KL in closed form and so removes its sampling noise, which usually lowers the variance; when
$q(z\mid x)$ is close to $p(z\mid x)$ the two parts of the first partly cancel, and the table shows which is
steadier for this image. The summary's ELBO uses the second with $L = 10$.

The **IWAE** estimate averages $k$ importance weights,

$$\mathrm{IWAE}_k(x) = \log \frac1k \sum_{i=1}^k \frac{p(x, z_i)}{q(z_i\mid x)}, \quad z_i \sim q(z\mid x), \qquad \mathrm{ELBO}(x) = \mathbb E[\mathrm{IWAE}_1] \le \mathbb E[\mathrm{IWAE}_k] \le \log p(x),$$

and $\mathbb E[\mathrm{IWAE}_k] \to \log p(x)$ as $k$ grows, so $\mathrm{IWAE}_k - \mathrm{ELBO}$ estimates (from below, as
$k$ grows) the gap $\mathrm{KL}(q(z\mid x)\,\|\,p(z\mid x))$. The bounds hold for the expectations: one estimate is
random, and can land above $\log p(x)$ or below the ELBO, and the estimated gap can be negative.

**The code is a distribution.** The chart shows $\mu_j \pm \sigma_j$ of each latent dimension, sorted by its
$\mathrm{KL}(q(z_j\mid x)\,\|\,\mathcal N(0, 1))$; dimensions with KL near 0 sit at the prior and carry nothing
about $x$. The row of images decodes $\mu$ and then codes $z \sim q(z\mid x)$: the noise around the code that the
KL term keeps from shrinking to zero (without it, $\sigma \to 0$ and the VAE turns back into an AE). An AE has no
$q(z\mid x)$: it shows none of this.

**How typical is the image?** Not its likelihood alone: simple images (a blank page, a constant grey) get a
*higher* likelihood than the data the model was trained on (Nalisnick et al. 2019). The page uses the
input-complexity test of Serrà et al. (2020): a generic compressor (zlib) is a universal model
$p_0(x) = 2^{-L(x)}$, with $L(x)$ the compressed length of $x$ in bits, and

$$S(x) \;=\; -\log_2 p(x) - L(x) \;=\; \log_2 \frac{p_0(x)}{p(x)} \quad\text{bits,}$$

so $-S(x)$ is the number of bits the model saves over the compressor. The model saves many bits on its test images,
whose structure it knows; few on a blank page (the compressor finds it just as simple), none on noise. Here
$-\log_2 p(x)$ is estimated by $-\mathrm{ELBO}(x)/\ln 2$, which is never below it, the same estimator for the
upload and for the test images. $L(x)$ compresses what the likelihood scores: for a Bernoulli decoder the binary
image, 8 pixels a byte (for grey images the mean over 4 fixed random binarizations $b \sim \mathrm{Bernoulli}(x)$);
for a Gaussian decoder the 8-bit values, and $-\log_2 p(x)$ then adds $D \log_2 255$ bits to turn the density into
the probability of the 8-bit image.

The image is called **out of distribution** when it fails any of three tests, each against a high
percentile of the test images' values (up to 1,000 test images, scored the same way): **S** — $S(x)$ is
above their 99.5th percentile; **−log p** — $-\log_2 p(x)$ itself is above their 99th (a likelihood errs in
one direction only, too high for simple images, so a very *low* likelihood remains evidence; it also catches
noise, which neither the model nor a compressor this small can code in few bits); **x̂ ≠ x** — the
reconstruction's error, the mean of $(x - \hat x)^2$ over the pixels, is above their 99.5th: the model does
not explain the image. The last test catches what $S$ misses on a model of simple images: a digit shown to a
moons model costs about as few bits as a moon, yet its reconstruction is a moon. Together the limits fail at
most 2% of the test images, so about 98% or more of the model's own test images are called typical
(`benchmarks/typicality.py` measures it on held-out test images). The **percentile** shown is the share of
test images whose $S$ is lower than the image's (more typical): 50 is the middle of the test set.

If the model has a Bernoulli likelihood and trained on binarized images, every image (uploads and test images)
is scored on the same fixed binarization. A Bernoulli decoder trained on grey images scores each grey level $x_i$
as if it were the probability of a white pixel: $\log p(x\mid z)$ is then not the log of a normalised density of
the grey image, and $\mathrm{ELBO} \le \log p(x)$ bounds no probability of it (what it bounds is the mean
log-probability of its random binarizations). An **AE** has no posterior $q(z\mid x)$ and no prior, so it has no
ELBO and no IWAE: only the reconstruction log-likelihood $\log p(x\mid \hat z)$ of its code and the error; its
typicality test uses $-\log_2 p(x\mid \hat z)$, the bits its reconstruction costs, in place of $-\log_2 p(x)$.
"""


HOME_INTRO = """
- **Train** — train a VAE or an AE in the background, with live loss curves and samples.
- **Latent sliders** — move each latent dimension and watch the decoder's image change.
- **Interpolate** — walk from one image to another in latent space: the VAE, the AE and a pixel cross-fade.
- **Latent map** — the encoded test set in 2-D (PCA, t-SNE); hover to decode, click a point to pick it.
- **Reconstruct** — upload images; see their reconstruction, ELBO, log-likelihood estimate and whether they are typical.
- **Compare** — two to four models side by side on the same inputs, and the rate–distortion plot: what β trades.
- **Mixtures** — from a mixture of K Gaussians to a VAE's infinite mixture: density estimation and sampling side by side.
"""

HOME = r"""
A VAE learns an **encoder** $q_\phi(z\mid x) = \mathcal N(\mu, \operatorname{diag}\sigma^2)$ and a **decoder**
$p_\theta(x\mid z)$ by maximising the evidence lower bound

$$\log p(x) \;\ge\; \mathrm{ELBO} = \mathbb E_{q(z\mid x)}[\log p(x\mid z)] - \mathrm{KL}\big(q(z\mid x)\,\|\,\mathcal N(0, I)\big).$$

The first term rewards good reconstructions; the KL keeps each code close to the prior $\mathcal N(0, I)$.
That is why **sampling** works: draw $z \sim \mathcal N(0, I)$ and decode it — the grid above. The model card's
*test ELBO* and *IWAE* are in nats per image (higher is better); IWAE is the importance-weighted estimate
$\log \frac1k \sum_i p(x, z_i)/q(z_i\mid x)$, whose expectation is a tighter bound, between the ELBO and $\log p(x)$. *Active
units* are the latent dimensions whose average KL exceeds ACTIVE_NATS nats: the ones the model actually uses.

An **AE** encodes $x$ to one point $\hat z$ and is trained on the reconstruction term alone: it has no $q(z\mid x)$,
no prior, no KL, no ELBO and no IWAE. Its card shows the test reconstruction log-likelihood $\log p(x\mid \hat z)$
and its curve $-\log p(x\mid \hat z)$; the grid above is what its decoder makes of $\mathcal N(0, I)$ codes.
"""


def home_text(active_nats: float) -> str:
    """The Home page's explanation, with the active-unit threshold (vae.evaluate.ACTIVE_UNIT_NATS) filled in."""
    return HOME.replace("ACTIVE_NATS", f"{active_nats:g}")


GREY_BERNOULLI = (
    "Bernoulli likelihood on grey (not binary) images: log p(x|z) scores an unnormalised quantity (a Bernoulli "
    "gives probabilities to black and white pixels only), so ELBO ≤ log p(x) bounds no probability of the image; "
    "compare these numbers between images or between models of the same data, not as log-probabilities."
)


def likelihood_note(likelihood: str | None, binarize: bool | None) -> str | None:
    """The caveat to show beside a model's ELBO / IWAE / log-likelihood, or None when they are honest:
    a Bernoulli decoder on images that are not binarized scores grey levels as probabilities."""
    return GREY_BERNOULLI if likelihood == "bernoulli" and not binarize else None
