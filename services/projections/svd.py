"""Truncated SVD (scikit-learn's ``TruncatedSVD``): PCA without centring, the plane through the origin."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.jobs import Report
from services.projections import LinearFit, Projection


@dataclass(frozen=True)
class TruncatedSvd(Projection):
    def fit(self, x: np.ndarray, progress: Report | None = None) -> LinearFit:
        from sklearn.decomposition import TruncatedSVD

        w = TruncatedSVD(n_components=2, algorithm="randomized", random_state=0).fit(x).components_
        w = w * np.sign(w[np.arange(2), np.abs(w).argmax(axis=1)])[:, None]  # a deterministic sign
        return LinearFit.of(x, np.zeros(x.shape[1]), w)


PROJECTION = TruncatedSvd(
    name="svd",
    title="SVD",
    axis="SV",
    order=30,
    hover="z = componentsᵀ · (SV 1, SV 2): the inverse of the SVD projection",
    about=r"""**SVD** (truncated, Halko et al. 2011) projects onto the two leading right singular vectors $W$ of the
uncentred codes, $y = W^\top \mu$: PCA's plane through the origin, the prior's mean, instead of through the
codes' mean. Its inverse and ellipses are PCA's with $\bar\mu = 0$.""",
)
