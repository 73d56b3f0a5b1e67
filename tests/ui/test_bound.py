"""ui.bound: the posterior chart (μ ± σ and KL per dimension, sorted by KL)."""

from __future__ import annotations

import torch

from services.bound import posterior_view
from ui.bound import mc_l_options, posterior_figure
from vae.objectives import model_input


def test_posterior_figure_has_error_bars_and_kl_bars(tiny_model):
    x = model_input(
        torch.rand(1, *tiny_model.config.image_shape, generator=torch.Generator().manual_seed(5)), tiny_model.config
    )[0]
    v = posterior_view(tiny_model, x)
    fig = posterior_figure(v.order.tolist(), v.mu, v.sigma, v.kl)
    bars, points = fig.data
    assert list(bars.y) == list(v.kl) and list(points.error_y.array) == list(v.sigma)
    assert list(points.x) == [f"z{d + 1}" for d in v.order]


def test_conv_models_get_no_l_1000():
    assert max(mc_l_options("conv")) == 100 and max(mc_l_options("mlp")) == 1000
