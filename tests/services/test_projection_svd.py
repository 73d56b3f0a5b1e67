"""services/projections/svd.py: the truncated-SVD map, the registry's example of a new projection."""

from __future__ import annotations

import numpy as np

from services import maps, projections


def codes(n: int = 200, d: int = 8) -> np.ndarray:
    g = np.random.default_rng(0)
    return (g.normal(size=(n, d)) * np.linspace(3, 0.2, d) + 1.0).astype(np.float32)


def test_svd_is_registered_and_offered_from_two_dimensions():
    assert "svd" in maps.methods_for(2) and "svd" in maps.methods_for(32) and "svd" not in maps.methods_for(1)
    p = projections.get("svd")
    assert (p.title, p.axis, p.background) == ("SVD", "SV", False) and p.hover


def test_svd_is_scikit_learns_truncated_svd_up_to_sign_and_goes_back():
    from sklearn.decomposition import TruncatedSVD

    x = codes()
    lmap = maps.fit_map(x, "svd")
    ref = TruncatedSVD(n_components=2, algorithm="randomized", random_state=0).fit_transform(x)
    np.testing.assert_allclose(np.abs(lmap.xy), np.abs(ref), rtol=1e-4, atol=1e-4)
    mean, basis = maps.inverse_projection(lmap)
    assert np.all(mean == 0)  # no centring: the plane through the origin, the prior's mean
    np.testing.assert_allclose(basis @ basis.T, np.eye(2), atol=1e-6)
    xy = np.array([[1.0, -0.5], [4.0, 2.0]])
    np.testing.assert_allclose(lmap.place(maps.unproject(lmap, xy)), xy, atol=1e-4)
    np.testing.assert_array_equal(maps.fit_map(x, "svd").xy, lmap.xy)  # deterministic


def test_svd_projects_a_posterior_as_w_diag_sigma2_wt():
    x = codes(50, 4)
    lmap = maps.fit_map(x, "svd")
    std = np.full((1, 4), 0.5)
    np.testing.assert_allclose(maps.projected_covariances(std, lmap)[0], 0.25 * np.eye(2), atol=1e-6)
