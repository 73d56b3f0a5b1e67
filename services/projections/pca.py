"""PCA: the linear projection onto the two leading principal components of the codes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.jobs import Report
from services.projections import LinearFit, Projection, as_codes


@dataclass
class Pca:
    """Principal components by an SVD of the centred codes (NumPy: no scikit-learn import, a few ms).

    ``components`` (k, D) are the leading right singular vectors, each signed so that its largest
    entry is positive (a deterministic choice); ``transform`` gives (M, k) coordinates.
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, k: int) -> Pca:
        x = as_codes(x).astype(np.float64)
        mean = x.mean(axis=0)
        _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
        vt = vt[:k]
        signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)])
        vt = vt * np.where(signs == 0, 1.0, signs)[:, None]
        return cls(mean, vt, (s[:k] ** 2) / max(1, len(x) - 1))

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((as_codes(x).astype(np.float64) - self.mean) @ self.components.T).astype(np.float32)


@dataclass(frozen=True)
class PcaProjection(Projection):
    def fit(self, x: np.ndarray, progress: Report | None = None) -> LinearFit:
        pca = Pca.fit(x, 2)
        return LinearFit.of(x, pca.mean, pca.components)


PROJECTION = PcaProjection(
    name="pca",
    title="PCA",
    axis="PC",
    order=10,
    hover="z = mean + componentsᵀ · (PC 1, PC 2): the inverse of the PCA projection",
    about=r"""**PCA** is a *linear* projection, $y = W^\top(\mu - \bar\mu)$ with $W$ the two leading eigenvectors of the
codes' covariance: distances and straight lines survive (shrunk), but two classes can overlap on the map although
they are apart in the dimensions it drops. Hovering decodes $z = \bar\mu + W (y_1, y_2)$, the code on the map's
plane (the dropped dimensions at the codes' mean). The projection of $z \sim q(z\mid x)$ is Gaussian with
covariance $W^\top \operatorname{diag}(\sigma^2)\, W$: its eigenvalues are the squared semi-axes of the
ellipse, its eigenvectors their directions.""",
)
