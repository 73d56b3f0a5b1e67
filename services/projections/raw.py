"""Raw codes: the plane of z's first two dimensions itself (a 1-D code gets a zero second coordinate)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.jobs import Report
from services.projections import LinearFit, Projection


@dataclass(frozen=True)
class Raw(Projection):
    def offered(self, latent_dim: int) -> bool:
        return latent_dim <= 2  # beyond two dimensions the plane of (z1, z2) hides the rest

    def fit(self, x: np.ndarray, progress: Report | None = None) -> LinearFit:
        d = x.shape[1]
        return LinearFit.of(x, np.zeros(d), np.eye(2, d))


PROJECTION = Raw(
    name="raw",
    title="raw codes",
    axis=None,
    order=0,
    hover="z = (x, y): the raw code",
    about=r"""**Raw codes** (2-D latents only): the plane of $(z_1, z_2)$ itself. The dashed square spans the 5 % to
95 % quantiles of the prior in each coordinate, the area the **manifold grid** below decodes: it sets
$z = (\Phi^{-1}(p_1), \Phi^{-1}(p_2))$ on an even grid of probabilities $p$, so equal steps carry equal prior
mass (Kingma & Welling 2013, fig. 4). A posterior $q(z\mid x)$ is the axis-aligned ellipse with radii
$\sigma_1, \sigma_2$.""",
)
