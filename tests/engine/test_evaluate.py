import math

import pytest
import torch

from vae.config import ModelConfig
from vae.evaluate import ImageScore, encode_mean, evaluate, kl_by_dimension, score_images, split_terms
from vae.models import build_model
from vae.objectives import elbo_terms

KEYS = {"elbo", "recon", "kl", "iwae", "iwae_k", "iwae_n", "active_units", "n"}


def test_evaluate_vae(moons, tiny_model):
    x = moons.test_x
    calls = []
    res = evaluate(tiny_model, x, iwae_k=20, batch_size=25, progress=lambda i, n: calls.append((i, n)))
    assert set(res) == KEYS
    assert res["n"] == 64 and res["iwae_k"] == 20 and res["iwae_n"] == 64
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
        q = tiny_model.encode(x)
    torch.testing.assert_close(kl_by_dimension(tiny_model, x, batch_size=7), q.kl_per_dim().mean(0))
    torch.testing.assert_close(encode_mean(tiny_model, x, batch_size=7), q.mean)


def test_score_images(moons, tiny_model):
    x = moons.test_x[:5]
    scores = score_images(tiny_model, x, iwae_k=30, n_samples=4)
    assert len(scores) == 5 and all(isinstance(s, ImageScore) for s in scores)
    for s in scores:
        assert s.elbo == pytest.approx(s.recon - s.kl, abs=1e-3)
        assert s.iwae is not None and math.isfinite(s.iwae) and s.iwae_k == 30
    # Per image: the closed-form KL of each image's own posterior.
    with torch.no_grad():
        kl = tiny_model.encode(x).kl()
    assert [s.kl for s in scores] == pytest.approx(kl.tolist(), rel=1e-5)


def test_score_images_for_an_ae(moons):
    ae = build_model(ModelConfig(kind="ae", hidden=(8,), latent_dim=2))
    scores = score_images(ae, moons.test_x[:3], iwae_k=30)
    assert [s.iwae for s in scores] == [None] * 3 and all(s.iwae_k == 0 and s.kl == 0 for s in scores)


def test_split_terms_batches_give_the_per_image_terms(moons, tiny_model):
    """Batched per-image (ELBO, recon, KL) equal one elbo_terms call with the same noise (one z per image)."""
    x = moons.test_x[:10]
    rows = split_terms(tiny_model, x, batch_size=10, generator=torch.Generator().manual_seed(2))
    t = elbo_terms(tiny_model, x, n_samples=1, generator=torch.Generator().manual_seed(2))
    assert rows.shape == (10, 3)
    torch.testing.assert_close(rows, torch.stack([t.elbo, t.recon, t.kl], 1))
    # Smaller batches: the same KL (closed form) and sums within Monte Carlo reach.
    small = split_terms(tiny_model, x, batch_size=3, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(small[:, 2], rows[:, 2])
    assert split_terms(tiny_model, x[:0]).shape == (0, 3)


def test_package_evaluate_is_the_module_and_its_function_is_reachable():
    """`vae.evaluate` names the submodule (a `python -m` entry point); the function lives in it
    and is not re-exported under the same name, which would be shadowed once the module loads."""
    import vae
    import vae.evaluate as module

    assert vae.evaluate is module
    assert module.evaluate is evaluate
    assert "evaluate" not in vae.__all__
