import pytest
import torch

from vae.config import ModelConfig
from vae.models import AE, VAE, build_model

SHAPES = [
    # (arch, image_shape, hidden, latent_dim)
    ("mlp", (1, 28, 28), (400,), 2),
    ("mlp", (1, 28, 28), (512, 256), 128),
    ("mlp", (3, 16, 12), (8,), 5),
    ("conv", (1, 28, 28), (32, 64), 2),
    ("conv", (1, 28, 28), (4, 4, 4, 4), 3),  # 28 -> 14 -> 7 -> 3 -> 1 and back (odd sizes)
    ("conv", (3, 32, 32), (8, 16), 128),
    ("conv", (1, 64, 64), (4, 8, 8), 2),
    ("conv", (3, 64, 64), (4, 8), 16),
    ("conv", (1, 32, 32), (6,), 4),  # a single conv layer
]


@pytest.mark.parametrize("kind", ["vae", "ae"])
@pytest.mark.parametrize("arch,image_shape,hidden,latent", SHAPES)
def test_shapes(kind, arch, image_shape, hidden, latent):
    cfg = ModelConfig(kind=kind, arch=arch, image_shape=image_shape, hidden=hidden, latent_dim=latent)
    model = build_model(cfg)
    assert type(model) is (AE if kind == "ae" else VAE)
    n = 3
    x = torch.rand(n, *image_shape)
    with torch.no_grad():
        q = model.encode(x)
        assert q.mean.shape == (n, latent) and q.std.shape == (n, latent) and q.kl().shape == (n,)
        assert q.deterministic == (kind == "ae")
        z = q.sample(torch.Generator().manual_seed(0))
        assert z.shape == (n, latent)
        assert q.sample(n_samples=4).shape == (4, n, latent)
        out = model.decode(z)
        assert out.shape == (n, *image_shape)
        assert out.min() >= 0 and out.max() <= 1
        assert model.decode_logits(z).shape == (n, *image_shape)
        assert model.reconstruct(x).shape == (n, *image_shape)
        assert model.reconstruct(x, sample=True).shape == (n, *image_shape)
        s = model.sample(5)
        assert s.shape == (5, *image_shape) and s.min() >= 0 and s.max() <= 1


def test_decode_stays_in_unit_interval_for_extreme_codes(tiny_model):
    with torch.no_grad():
        out = tiny_model.decode(torch.tensor([[1e4, -1e4], [-1e6, 1e6]]))
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


def test_gradients_reach_encoder_through_sampling(tiny_model, moons):
    z = tiny_model.encode(moons.train_x[:8]).sample(torch.Generator().manual_seed(0))
    tiny_model.decode_logits(z).sum().backward()
    assert tiny_model.to_stats.weight.grad is not None
    assert tiny_model.to_stats.weight.grad.abs().sum() > 0


def test_ae_is_deterministic():
    model = build_model(ModelConfig(kind="ae", hidden=(16,), latent_dim=3))
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        q = model.encode(x)
        assert q.deterministic and torch.equal(q.std, torch.zeros(2, 3)) and torch.equal(q.kl(), torch.zeros(2))
        assert torch.equal(q.sample(torch.Generator().manual_seed(0)), q.mean)
        assert torch.equal(model.reconstruct(x, sample=True), model.reconstruct(x))
    assert model.to_stats.out_features == 3  # no logvar head


def test_sample_is_reproducible_with_a_generator(tiny_model):
    a = tiny_model.sample(4, generator=torch.Generator().manual_seed(5))
    b = tiny_model.sample(4, generator=torch.Generator().manual_seed(5))
    c = tiny_model.sample(4, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sample_temperature_zero_decodes_the_prior_mean(tiny_model):
    with torch.no_grad():
        s = tiny_model.sample(3, temperature=0.0)
        expected = tiny_model.decode(torch.zeros(1, 2)).expand(3, -1, -1, -1)
    torch.testing.assert_close(s, expected)


def test_reconstruct_decodes_the_posterior_mean(tiny_model, moons):
    x = moons.test_x[:4]
    with torch.no_grad():
        q = tiny_model.encode(x)
        torch.testing.assert_close(tiny_model.reconstruct(x), tiny_model.decode(q.mean))
        g = torch.Generator().manual_seed(4)
        drawn = tiny_model.reconstruct(x, torch.Generator().manual_seed(4), sample=True)
        torch.testing.assert_close(drawn, tiny_model.decode(q.sample(g)))


def test_learned_sigma_is_a_parameter_and_fixed_sigma_is_not():
    learned = build_model(ModelConfig(likelihood="gaussian", learn_sigma=True, sigma=0.3, hidden=(4,)))
    fixed = build_model(ModelConfig(likelihood="gaussian", sigma=0.3, hidden=(4,)))
    assert any(p is learned.log_sigma for p in learned.parameters())
    assert all(p is not fixed.log_sigma for p in fixed.parameters())
    assert "log_sigma" in learned.state_dict() and "log_sigma" not in fixed.state_dict()
    torch.testing.assert_close(fixed.log_sigma, torch.log(torch.tensor(0.3)))
    torch.testing.assert_close(learned.log_sigma.detach(), torch.log(torch.tensor(0.3)))


@pytest.mark.parametrize("arch,hidden", [("mlp", (16,)), ("conv", (4, 8))])
def test_same_generator_seed_same_init(arch, hidden):
    """Initialised from a generator: the same seed gives the same weights, whatever the global RNG holds;
    and the scale is PyTorch's default (weights within +-1/sqrt(fan_in))."""
    cfg = ModelConfig(arch=arch, hidden=hidden, latent_dim=3)
    torch.manual_seed(1)
    a = build_model(cfg, torch.Generator().manual_seed(9)).state_dict()
    torch.manual_seed(2)
    b = build_model(cfg, torch.Generator().manual_seed(9)).state_dict()
    c = build_model(cfg, torch.Generator().manual_seed(10)).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["to_stats.weight"], c["to_stats.weight"])
    w = a["to_stats.weight"]
    bound = 1 / w.shape[1] ** 0.5
    assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound
