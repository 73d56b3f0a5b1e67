"""The encoder's posterior q(z|x) = N(mu, diag sigma^2) as an object (after diffusers'
``DiagonalGaussianDistribution``), and the Gaussian log-densities the bounds need.

Shapes: ``mean`` and ``logvar`` are (N, D); ``sample`` gives (N, D) or (L, N, D).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

LOG_2PI = math.log(2 * math.pi)


def kl_per_dim(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) for each dimension: (N, D) -> (N, D)."""
    return 0.5 * (logvar.exp() + mu.pow(2) - 1.0 - logvar)


def projected_covariance(var: Tensor, w: Tensor) -> Tensor:
    """The covariance W^T diag(var_n) W (N, K, K) of diagonal Gaussians with variances var (N, D)
    seen through the K columns of w (D, K): what a posterior q(z|x) looks like in a plane or a map."""
    return torch.einsum("dk,nd,dl->nkl", w, var, w)


def log_normal(z: Tensor, mu: Tensor | None = None, logvar: Tensor | None = None) -> Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dim; the standard normal if omitted."""
    if mu is None:
        return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)
    assert logvar is not None
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)


class DiagonalGaussian:
    """q(z|x) = N(mean, diag(std^2)) for a batch of images; a point mass at ``mean`` when
    ``logvar`` is None (an AE's deterministic code: std 0, no KL term, no density)."""

    def __init__(self, mean: Tensor, logvar: Tensor | None = None) -> None:
        self.mean = mean  # (N, D)
        self.logvar = logvar  # (N, D) or None

    @property
    def deterministic(self) -> bool:
        return self.logvar is None

    @property
    def std(self) -> Tensor:
        """sigma (N, D); zeros for a point mass."""
        return torch.zeros_like(self.mean) if self.logvar is None else torch.exp(0.5 * self.logvar)

    @property
    def var(self) -> Tensor:
        return self.std.pow(2)

    def sample(self, generator: torch.Generator | None = None, n_samples: int | None = None) -> Tensor:
        """The reparameterization z = mu + sigma * eps, eps ~ N(0, I) drawn from ``generator``
        (on the mean's device): (N, D), or (L, N, D) for ``n_samples`` = L. Gradients flow to mu
        and sigma. A point mass returns its mean (expanded to L copies)."""
        shape = self.mean.shape if n_samples is None else (n_samples, *self.mean.shape)
        if self.logvar is None:
            return self.mean.expand(shape)
        eps = torch.randn(shape, generator=generator, dtype=self.mean.dtype, device=self.mean.device)
        return self.mean + self.std * eps

    def kl_per_dim(self) -> Tensor:
        """KL(q(z_j|x) || N(0, 1)) for each dimension, (N, D); zeros for a point mass (an AE has no KL)."""
        if self.logvar is None:
            return torch.zeros_like(self.mean)
        return kl_per_dim(self.mean, self.logvar)

    def kl(self) -> Tensor:
        """Closed form KL(q(z|x) || N(0, I)) = 1/2 sum_j (sigma_j^2 + mu_j^2 - 1 - log sigma_j^2): (N,).

        Kingma & Welling 2013, appendix B."""
        return self.kl_per_dim().sum(-1)

    def log_prob(self, z: Tensor) -> Tensor:
        """log q(z|x) for codes z (..., N, D) -> (..., N). A point mass has no density: ValueError."""
        if self.logvar is None:
            raise ValueError("a deterministic code (an AE's) has no density q(z|x)")
        return log_normal(z, self.mean, self.logvar)

    def to(self, device: torch.device | str) -> DiagonalGaussian:
        return DiagonalGaussian(self.mean.to(device), None if self.logvar is None else self.logvar.to(device))

    def __getitem__(self, idx) -> DiagonalGaussian:
        """The posteriors of some images (indexing the batch dimension)."""
        return DiagonalGaussian(self.mean[idx], None if self.logvar is None else self.logvar[idx])

    def __len__(self) -> int:
        return len(self.mean)
