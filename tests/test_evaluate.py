import math

import pytest
import torch

from vae.config import ModelConfig
from vae.evaluate import ImageScore, binarized, encode_mean, evaluate, kl_by_dimension, score_images
from vae.models import build_model
from vae.objectives import kl_per_dim

KEYS = {"elbo", "recon", "kl", "iwae", "iwae_k", "active_units", "n"}


def test_evaluate_vae(moons, tiny_model):
    x = moons.test_x
    calls = []
    res = evaluate(tiny_model, x, iwae_k=20, batch_size=25, progress=lambda i, n: calls.append((i, n)))
    assert set(res) == KEYS
    assert res["n"] == 64 and res["iwae_k"] == 20
    assert res["elbo"] == pytest.approx(res["recon"] - res["kl"], abs=1e-3)
    assert all(math.isfinite(res[k]) for k in ("elbo", "recon", "kl", "iwae"))
    assert res["kl"] >= 0
    assert res["iwae"] >= res["elbo"] - 1.0  # a tighter bound, up to Monte Carlo noise
    assert isinstance(res["active_units"], int) and 0 <= res["active_units"] <= 2
    assert calls == [(25, 64), (50, 64), (64, 64)]
    # Seeded: the same numbers twice.
    assert evaluate(tiny_model, x, iwae_k=20, batch_size=25) == {k: v for k, v in res.items()}


def test_evaluate_without_iwae_and_for_an_ae(moons):
    vae_model = build_model(ModelConfig(hidden=(8,), latent_dim=2))
    res = evaluate(vae_model, moons.test_x[:10])
    assert res["iwae"] is None and res["iwae_k"] == 0 and res["n"] == 10
    ae = build_model(ModelConfig(kind="ae", hidden=(8,), latent_dim=2))
    res = evaluate(ae, moons.test_x[:10], iwae_k=50)
    assert set(res) == KEYS
    assert res["iwae"] is None and res["iwae_k"] == 0 and res["active_units"] is None
    assert res["kl"] == 0 and res["elbo"] == pytest.approx(res["recon"])


def test_active_units_count_dimensions_with_kl(moons):
    """A latent dimension whose q(z_j|x) is the prior is inactive; one that carries information is active."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=(8,), latent_dim=3))
    with torch.no_grad():
        w, b = model.to_stats.weight, model.to_stats.bias  # rows: mu_0..2, logvar_0..2
        w.zero_()
        b.zero_()
        w[0].normal_(0, 1.0)  # mu_0 depends on x: active; dims 1 and 2 are exactly the prior
    res = evaluate(model, moons.test_x)
    assert res["active_units"] == 1
    per_dim = kl_by_dimension(model, moons.test_x, batch_size=10)
    assert per_dim.shape == (3,) and per_dim[0] > 0.01 and per_dim[1] == 0 and per_dim[2] == 0


def test_kl_by_dimension_is_the_mean_kl(moons, tiny_model):
    x = moons.test_x[:30]
    with torch.no_grad():
        mu, logvar = tiny_model.encode(x)
    torch.testing.assert_close(kl_by_dimension(tiny_model, x, batch_size=7), kl_per_dim(mu, logvar).mean(0))
    torch.testing.assert_close(encode_mean(tiny_model, x, batch_size=7), mu)


def test_score_images(moons, tiny_model):
    x = moons.test_x[:5]
    scores = score_images(tiny_model, x, iwae_k=30, n_samples=4)
    assert len(scores) == 5 and all(isinstance(s, ImageScore) for s in scores)
    for s in scores:
        assert s.elbo == pytest.approx(s.recon - s.kl, abs=1e-3)
        assert s.iwae is not None and math.isfinite(s.iwae) and s.iwae_k == 30
    # Per image: the closed-form KL of each image's own posterior.
    with torch.no_grad():
        mu, logvar = tiny_model.encode(x)
    kl = kl_per_dim(mu, logvar).sum(1)
    assert [s.kl for s in scores] == pytest.approx(kl.tolist(), rel=1e-5)


def test_score_images_for_an_ae(moons):
    ae = build_model(ModelConfig(kind="ae", hidden=(8,), latent_dim=2))
    scores = score_images(ae, moons.test_x[:3], iwae_k=30)
    assert [s.iwae for s in scores] == [None] * 3 and all(s.iwae_k == 0 and s.kl == 0 for s in scores)


def test_binarized_is_fixed_and_binary(moons):
    x = moons.test_x[:8]
    a, b = binarized(x), binarized(x)
    assert torch.equal(a, b) and set(a.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(binarized(x, seed=1), a)
    assert abs(a.mean().item() - x.mean().item()) < 0.05


def test_package_evaluate_is_the_module_and_its_function_is_reachable():
    """`vae.evaluate` names the submodule (a `python -m` entry point); the function lives in it
    and is not re-exported under the same name, which would be shadowed once the module loads."""
    import vae
    import vae.evaluate as module

    assert vae.evaluate is module
    assert module.evaluate is evaluate
    assert "evaluate" not in vae.__all__
