"""services.compare: grouping a β sweep, refusing models that cannot share inputs, rate and distortion."""

from __future__ import annotations

import pytest
import torch

from services.compare import (
    Candidate,
    CompareError,
    beta_sweep,
    check_comparable,
    measure,
    prior_samples,
    rate_distortion,
    reconstructions,
    shared_inputs,
)
from vae.config import ModelConfig
from vae.evaluate import ACTIVE_UNIT_NATS
from vae.models import build_model
from vae.objectives import log_likelihood


def meta(beta: float = 1.0, kind: str = "vae", dataset: str = "moons", shape=(1, 28, 28), hidden=(512, 256)) -> dict:
    cfg = ModelConfig(kind=kind, image_shape=shape, hidden=hidden, latent_dim=16, beta=beta).to_dict()
    return {"config": cfg, "train": {"dataset": dataset, "epochs": 40, "seed": 1}, "dataset": {"name": dataset}}


def cand(name: str, **kw) -> Candidate:
    return Candidate.from_metadata(name, meta(**kw))


def test_the_sweep_is_the_largest_group_alike_in_all_but_beta_ordered_by_beta():
    cands = [
        cand("moons-vae"),
        cand("moons-ae", kind="ae"),
        cand("moons-vae-beta4", beta=4.0),
        cand("other-arch", hidden=(64,), beta=2.0),
        cand("moons-vae-beta0.5", beta=0.5),
        cand("digits-vae", dataset="digits"),
    ]
    assert beta_sweep(cands) == ["moons-vae-beta0.5", "moons-vae", "moons-vae-beta4"]
    assert beta_sweep([cand("a"), cand("b", kind="ae", beta=2.0), cand("c", hidden=(8,), beta=3.0)]) == []


def test_models_of_one_data_set_and_shape_are_comparable_two_to_four_at_a_time():
    check_comparable([cand("a"), cand("b", beta=4.0), cand("c", kind="ae")])
    with pytest.raises(CompareError, match="two to four"):
        check_comparable([cand("a")])
    with pytest.raises(CompareError, match="two to four"):
        check_comparable([cand(str(i)) for i in range(5)])


def test_mixed_image_shapes_are_refused_with_one_message_naming_each_model():
    with pytest.raises(CompareError) as e:
        check_comparable([cand("a"), cand("rgb", shape=(3, 32, 32), dataset="folder:x")])
    msg = str(e.value)
    assert "different shapes" in msg and "a: 1×28×28" in msg and "rgb: 3×32×32" in msg
    assert "data set" not in msg.split(".")[0]  # the shape is what it names first


def test_mixed_data_sets_of_one_shape_are_refused():
    with pytest.raises(CompareError, match="different data sets.*a: moons; d: digits"):
        check_comparable([cand("a"), cand("d", dataset="digits")])


def test_shared_inputs_are_the_same_for_every_call_and_never_repeat():
    x = torch.zeros(50, 1, 4, 4)
    a, b = shared_inputs(x, 8, seed=3), shared_inputs(x, 8, seed=3)
    assert torch.equal(a, b) and len(set(a.tolist())) == 8 and torch.equal(a, a.sort().values)
    assert not torch.equal(a, shared_inputs(x, 8, seed=4))
    assert sorted(shared_inputs(x, 500).tolist()) == list(range(50))  # capped at the test split


@pytest.fixture
def pair():
    """Two tiny untrained VAEs alike but for β and seed, and an AE: latent 3 on 28x28 images."""
    out = []
    for seed, kind, beta in ((0, "vae", 0.5), (1, "vae", 4.0), (2, "ae", 1.0)):
        cfg = ModelConfig(kind=kind, image_shape=(1, 28, 28), hidden=(16,), latent_dim=3, beta=beta)
        out.append(build_model(cfg, generator=torch.Generator().manual_seed(seed)).eval())
    return out


def test_rate_and_distortion_are_the_two_terms_of_the_elbo(moons, pair):
    vae = pair[0]
    x = moons.test_x[:16]
    m = measure("v", vae, x, iwae_k=5, n_samples=4, seed=0)
    q = vae.encode(x)
    assert m.rate == pytest.approx(q.kl().mean().item(), rel=1e-5)  # closed form: no noise
    assert m.elbo == pytest.approx(-(m.rate + m.distortion), rel=1e-6)
    assert m.beta == 0.5 and m.kind == "vae" and m.n == 16 and m.iwae_k == 5 and m.iwae_n == 16
    assert m.kl_dims.shape == (3,) and torch.all(m.kl_dims[:-1] >= m.kl_dims[1:])  # largest first
    assert m.kl_dims.sum().item() == pytest.approx(m.rate, rel=1e-4)
    assert m.active_units == int((m.kl_dims > ACTIVE_UNIT_NATS).sum())
    assert m.iwae is not None and m.iwae > m.elbo - 5  # a bound of the same images, not far below
    again = measure("v", vae, x, iwae_k=5, n_samples=4, seed=0)
    assert (again.distortion, again.iwae) == (m.distortion, m.iwae)  # seeded


def test_an_ae_has_a_distortion_and_nothing_else(moons, pair):
    ae = pair[2]
    x = moons.test_x[:8]
    m = measure("a", ae, x, iwae_k=5)
    with torch.no_grad():
        want = -log_likelihood(x, ae.decode_logits(ae.encode(x).mean), "bernoulli").mean().item()
    assert m.distortion == pytest.approx(want, rel=1e-5)
    assert (m.rate, m.elbo, m.iwae, m.active_units, m.iwae_k) == (None, None, None, None, 0)
    assert m.kl_dims.numel() == 0


def test_rate_distortion_points_are_the_vaes_by_rate(moons, pair):
    x = moons.test_x[:8]
    ms = [measure(n, m, x, iwae_k=0) for n, m in zip(("half", "four", "ae"), pair)]
    pts = rate_distortion(ms)
    assert [p[0] for p in pts] == sorted(("half", "four"), key=lambda n: next(m.rate for m in ms if m.name == n))
    assert {(p[1], p[2], p[3]) for p in pts} == {(m.beta, m.rate, m.distortion) for m in ms[:2]}


def test_every_model_gets_the_same_prior_codes_and_reconstructs_the_same_images(moons, pair):
    n, seed = 5, 7
    for model in pair:
        z = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            torch.testing.assert_close(prior_samples(model, n, seed), model.decode(z))
            x = moons.test_x[:4]
            torch.testing.assert_close(reconstructions(model, x), model.decode(model.encode(x).mean))


def test_measures_are_kept_on_disk_and_read_back_as_they_were(moons, pair, tmp_path, monkeypatch):
    import services.compare as compare

    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path))
    x = moons.test_x[:8]
    first = [compare.measure_kept(f"{n}:1.0", n, m, x, iwae_k=5) for n, m in (("v", pair[0]), ("a", pair[2]))]
    assert sorted(p.name.split("-")[0] for p in tmp_path.iterdir()) == ["measure", "measure"]
    with monkeypatch.context() as mp:
        mp.setattr(compare, "split_terms", lambda *a, **k: pytest.fail("measured again"))
        again = [compare.measure_kept(f"{n}:1.0", n, m, x, iwae_k=5) for n, m in (("v", pair[0]), ("a", pair[2]))]
    for a, b in zip(again, first):  # a new session reads back what the first one measured, Nones as Nones
        assert a.kl_dims.dtype == b.kl_dims.dtype and torch.equal(a.kl_dims, b.kl_dims)
        assert {**vars(a), "kl_dims": None} == {**vars(b), "kl_dims": None}
    assert (again[1].rate, again[1].elbo, again[1].iwae, again[1].active_units) == (None, None, None, None)
    compare.measure_kept("v:2.0", "v", pair[0], x, iwae_k=5)  # the file changed (another mtime): measured anew
    compare.measure_kept("v:1.0", "v", pair[0], x[:4], iwae_k=5)  # other images: measured anew
    assert len(list(tmp_path.iterdir())) == 4
