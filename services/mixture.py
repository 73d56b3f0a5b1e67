"""From a Gaussian mixture to an infinite one (design document 003): a 1-D toy density modelled twice.

A K-component Gaussian mixture p(x) = Σ_k π_k N(x; μ_k, σ_k²), fitted by EM, and a tiny VAE whose decoder
makes p(x) = ∫ N(x; μ(z), σ²) N(z; 0, 1) dz, trained by maximising the ELBO. Both do the two things a
generative model does: give a density p(x) and draw samples. Pure torch; every random draw goes through a
seeded ``torch.Generator``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vae.distributions import kl_per_dim, log_normal

# The toy density: a right-skewed Gamma(2) bump (no finite mixture fits it exactly) and two Gaussian bumps.
GAMMA_WEIGHT, GAMMA_SHIFT, GAMMA_SCALE = 0.5, -3.5, 0.7
BUMPS = ((0.3, 1.5, 0.4), (0.2, 3.5, 0.55))  # (weight, mean, std)
GRID = (-5.0, 6.5)  # where the toy density has all but ~1e-6 of its mass
# The decoder's σ starts small (standardised units) so that μ(z) must spread the data out from the first
# steps; started at 0.3 it needed ~50% more steps for the same test log-likelihood.
SIGMA0 = 0.1
QUADRATURE_POINTS = 2000  # prior quantiles for ∫ … p(z) dz: error far below the plots' resolution


def _normal_log_pdf(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """log N(x; mean, std²) elementwise (broadcast): vae.distributions.log_normal over a last axis of one."""
    mean, std = torch.as_tensor(mean, dtype=x.dtype), torch.as_tensor(std, dtype=x.dtype)
    return log_normal(x[..., None], mean[..., None], 2 * torch.log(std)[..., None])


# --------------------------------------------------------------------------- the toy data


def toy_density(x: Tensor) -> Tensor:
    """The true density at x (N,) → (N,)."""
    u = (x - GAMMA_SHIFT) / GAMMA_SCALE
    out = GAMMA_WEIGHT * torch.where(u > 0, u * torch.exp(-u.clamp(min=0)), torch.zeros_like(u)) / GAMMA_SCALE
    for w, m, s in BUMPS:
        out = out + w * torch.exp(_normal_log_pdf(x, torch.tensor(m), torch.tensor(s)))
    return out


def toy_sample(n: int, generator: torch.Generator) -> Tensor:
    """n draws (n,) float64 from the toy density, by ancestral sampling over its three pieces."""
    probs = torch.tensor([GAMMA_WEIGHT, *(w for w, _, _ in BUMPS)], dtype=torch.float64)
    piece = torch.multinomial(probs, n, replacement=True, generator=generator)
    # Gamma(2, 1) is the sum of two Exponential(1) draws: −log U₁ − log U₂.
    u = torch.rand(2, n, generator=generator, dtype=torch.float64).clamp(min=1e-300)
    gamma = GAMMA_SHIFT + GAMMA_SCALE * -torch.log(u).sum(0)
    eps = torch.randn(n, generator=generator, dtype=torch.float64)
    means = torch.tensor([0.0, *(m for _, m, _ in BUMPS)], dtype=torch.float64)
    stds = torch.tensor([1.0, *(s for _, _, s in BUMPS)], dtype=torch.float64)
    return torch.where(piece == 0, gamma, means[piece] + stds[piece] * eps)


@dataclass(frozen=True)
class Toy:
    """The data set: train (N,) and test (M,) draws, a plotting grid (G,) and the true density on it (G,)."""

    train: Tensor
    test: Tensor
    grid: Tensor
    density: Tensor


def toy_data(n_train: int = 2000, n_test: int = 2000, seed: int = 0, grid_points: int = 600) -> Toy:
    """Draw the toy data set with a seeded generator (the same seed, the same data)."""
    g = torch.Generator().manual_seed(seed)
    train, test = toy_sample(n_train, g), toy_sample(n_test, g)
    grid = torch.linspace(*GRID, grid_points, dtype=torch.float64)
    return Toy(train, test, grid, toy_density(grid))


# --------------------------------------------------------------------------- the finite mixture (EM)


@dataclass(frozen=True)
class GaussianMixture:
    """p(x) = Σ_k π_k N(x; μ_k, σ_k²): weights, means, stds (K,); history: mean train log p(x) per EM step;
    converged: whether EM stopped because an E-step raised the log-likelihood by less than ``tol``
    (False: it ran out of iterations)."""

    weights: Tensor
    means: Tensor
    stds: Tensor
    history: tuple[float, ...] = ()
    converged: bool = False
    tol: float = 0.0

    @property
    def steps(self) -> int:
        """EM steps (E and M) taken: one fewer than the log-likelihoods recorded."""
        return max(len(self.history) - 1, 0)

    @property
    def k(self) -> int:
        return len(self.weights)

    def _joint(self, x: Tensor) -> Tensor:
        """log π_k + log N(x; μ_k, σ_k²) for x (N,) → (N, K)."""
        x = x.to(torch.float64)[:, None]
        return torch.log(self.weights) + _normal_log_pdf(x, self.means, self.stds)

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) for x (N,) → (N,)."""
        return torch.logsumexp(self._joint(x), dim=1)

    def components(self, x: Tensor) -> Tensor:
        """Each weighted component π_k N(x; μ_k, σ_k²) at x (N,) → (K, N); they sum to p(x)."""
        return self._joint(x).exp().T

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """Ancestral sampling (n,): pick k ~ π, then x ~ N(μ_k, σ_k²)."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, generator=generator, dtype=torch.float64)
        return self.means[k] + self.stds[k] * eps


def fit_gmm(x: Tensor, k: int, iterations: int = 300, tol: float = 1e-8) -> GaussianMixture:
    """Fit K components to x (N,) by EM, started from the data's K equal-mass quantiles (deterministic)."""
    x = x.to(torch.float64)
    n = len(x)
    # A variance floor keeps a component from collapsing onto one point (log-likelihood → ∞); clamping the
    # M-step's variance keeps EM monotone, since its objective is unimodal in σ².
    floor = 1e-4 * x.var()
    q = (torch.arange(k, dtype=torch.float64) + 0.5) / k
    gm = GaussianMixture(
        torch.full((k,), 1.0 / k, dtype=torch.float64),
        torch.quantile(x, q),
        torch.full((k,), float(x.std()) / k, dtype=torch.float64),
    )
    history: list[float] = []
    converged = False
    for _ in range(iterations):
        joint = gm._joint(x)  # (N, K)
        log_px = torch.logsumexp(joint, dim=1, keepdim=True)
        history.append(float(log_px.mean()))
        if len(history) > 1 and history[-1] - history[-2] < tol:
            converged = True
            break
        r = (joint - log_px).exp()  # E-step: responsibilities p(k | x_n), (N, K)
        nk = r.sum(0).clamp(min=1e-12)
        means = (r * x[:, None]).sum(0) / nk
        var = (r * (x[:, None] - means) ** 2).sum(0) / nk
        gm = GaussianMixture(nk / n, means, var.clamp(min=floor).sqrt())
    else:  # out of iterations: the history ends with the returned parameters' log-likelihood
        history.append(float(gm.log_prob(x).mean()))
    return GaussianMixture(gm.weights, gm.means, gm.stds, tuple(history), converged, tol)


# --------------------------------------------------------------------------- the infinite mixture (a tiny VAE)


def _mlp(n_in: int, n_out: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, n_out)
    )


class TinyVAE(nn.Module):
    """A 1-D VAE: encoder q(z|x) = N(m(x), s(x)²), decoder p(x|z) = N(μ(z), σ²) with one learned σ.

    The data are standardised inside (loc, scale), so the networks see values of order 1."""

    def __init__(self, loc: float, scale: float, hidden: int = 32, generator: torch.Generator | None = None):
        super().__init__()
        self.encoder = _mlp(1, 2, hidden)
        self.decoder = _mlp(1, 1, hidden)
        self.log_sigma = nn.Parameter(torch.tensor(math.log(SIGMA0)))  # σ in standardised units
        self.register_buffer("loc", torch.tensor(float(loc)))
        self.register_buffer("scale", torch.tensor(float(scale)))
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        for m in self.modules():
            if isinstance(m, nn.Linear):  # nn.Linear's own init draws from the global RNG
                bound = 1 / math.sqrt(m.in_features)
                nn.init.uniform_(m.weight, -bound, bound, generator=g)
                nn.init.uniform_(m.bias, -bound, bound, generator=g)

    @property
    def sigma(self) -> float:
        """The decoder's σ in data units."""
        return float(self.log_sigma.exp() * self.scale)

    def mu(self, z: Tensor) -> Tensor:
        """The decoder's mean μ(z) in data units: z (N,) → (N,)."""
        return self.loc + self.scale * self.decoder(z.float()[:, None])[:, 0]

    def elbo(self, x: Tensor, generator: torch.Generator, calibrate: bool = False) -> Tensor:
        """One-sample ELBO per point, x (N,) → (N,) nats in data units:
        E_q[log p(x|z)] − KL(q(z|x) ‖ N(0, 1)), with z = m + s·ε (the reparameterisation)."""
        xs = ((x.float() - self.loc) / self.scale)[:, None]
        m, log_var = self.encoder(xs).unbind(1)
        z = m + (0.5 * log_var).exp() * torch.randn(m.shape, generator=generator)
        mu = self.decoder(z[:, None])[:, 0]
        if calibrate:
            with torch.no_grad():  # σ at its ELBO maximiser for this batch: σ² = mean (x − μ(z))²
                self.log_sigma.copy_(0.5 * torch.log(((xs[:, 0] - mu) ** 2).mean().clamp(min=1e-6)))
        rec = _normal_log_pdf(xs[:, 0], mu, self.log_sigma.exp())
        kl = kl_per_dim(m, log_var)
        return rec - kl - torch.log(self.scale)  # the last term: back from standardised to data units


@dataclass(frozen=True)
class TrainedVAE:
    """A trained TinyVAE, its ELBO per step (train, nats per point) and how long training took (s)."""

    model: TinyVAE
    history: tuple[float, ...]
    seconds: float


def train_vae(x: Tensor, seed: int = 0, steps: int = 1500, lr: float = 2e-2, batch: int = 256) -> TrainedVAE:
    """Train a TinyVAE on x (N,) by maximising the ELBO with Adam (seeded: init, batches and ε)."""
    start = time.perf_counter()
    g = torch.Generator().manual_seed(seed)
    x = x.float()
    model = TinyVAE(float(x.mean()), float(x.std()), generator=g)
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)  # fused: ~5x less overhead per step on CPU
    history = []
    for step in range(steps):
        xb = x[torch.randint(len(x), (batch,), generator=g)]
        loss = -model.elbo(xb, g).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step == steps * 2 // 3:  # a lower rate for the last third, to settle σ
            opt.param_groups[0]["lr"] = lr / 5
        history.append(loss.detach())
    model.eval().requires_grad_(False)
    return TrainedVAE(model, tuple((-torch.stack(history)).tolist()), time.perf_counter() - start)


def prior_quantiles(n: int) -> Tensor:
    """z_i = Φ⁻¹((i − ½)/n), i = 1…n (n,): equal-mass points of N(0, 1)."""
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    return math.sqrt(2) * torch.erfinv(2 * u - 1)


def vae_components(model: TinyVAE, x: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """n of the infinite mixture's components N(x; μ(z_i), σ²)/n at the prior quantiles z_i (n,),
    evaluated at x (G,) → (z (n,), curves (n, G)); as n → ∞ their sum tends to p(x)."""
    z = prior_quantiles(n)
    with torch.no_grad():
        mu = model.mu(z).double()
    sigma = torch.tensor(model.sigma, dtype=torch.float64)
    return z, _normal_log_pdf(x.double()[None, :], mu[:, None], sigma).exp() / n


def vae_log_prob(model: TinyVAE, x: Tensor, points: int = QUADRATURE_POINTS) -> Tensor:
    """log p(x) = log ∫ N(x; μ(z), σ²) N(z; 0, 1) dz for x (N,) → (N,), by quadrature at ``points`` prior
    quantiles: p(x) ≈ (1/M) Σ_i N(x; μ(z_i), σ²), an M-component equal-weight mixture."""
    z = prior_quantiles(points)
    with torch.no_grad():
        mu = model.mu(z).double()
    sigma = torch.tensor(model.sigma, dtype=torch.float64)
    log_n = _normal_log_pdf(x.double()[:, None], mu[None, :], sigma)  # (N, M)
    return torch.logsumexp(log_n, dim=1) - math.log(points)


def vae_sample(model: TinyVAE, n: int, generator: torch.Generator) -> Tensor:
    """Ancestral sampling (n,): z ~ N(0, 1), then x ~ N(μ(z), σ²)."""
    z = torch.randn(n, generator=generator, dtype=torch.float64)
    eps = torch.randn(n, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        return model.mu(z).double() + model.sigma * eps


def vae_test_elbo(model: TinyVAE, x: Tensor, seed: int = 0) -> float:
    """The mean one-sample ELBO of x (N,) in nats per point: a lower bound on the mean log p(x)."""
    with torch.no_grad():
        return float(model.elbo(x, torch.Generator().manual_seed(seed)).mean())
