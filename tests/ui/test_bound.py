"""ui.bound: the posterior chart (μ ± σ and KL per dimension, sorted by KL)."""

from __future__ import annotations

from pathlib import Path

import torch

from services.bound import posterior_view
from ui.bound import active_units_caption, mc_l_options, posterior_figure
from vae.objectives import model_input


def test_posterior_figure_has_error_bars_and_kl_bars(tiny_model):
    x = model_input(
        torch.rand(1, *tiny_model.config.image_shape, generator=torch.Generator().manual_seed(5)), tiny_model.config
    )[0]
    v = posterior_view(tiny_model, x)
    fig = posterior_figure(v.order.tolist(), v.mu, v.sigma, v.kl)
    bars, points = fig.data
    assert list(bars.y) == list(v.kl) and list(points.error_y.array) == list(v.sigma)
    assert list(points.x) == [f"z{d + 1}" for d in v.order]  # ui.state.dim_label: z1 ... zD
    assert "z0" not in list(points.x)


def test_conv_models_get_no_l_1000():
    assert max(mc_l_options("conv")) == 100 and max(mc_l_options("mlp")) == 1000


def test_active_units_caption_says_it_right():
    """'32 of 32 dimensions ... the others stay at the prior' when there are no others: said right."""
    assert active_units_caption(32, 32) == "All 32 dimensions carry more than 0.01 nats of KL: none stays at the prior."
    assert "others" not in active_units_caption(32, 32)
    assert "the other stays" in active_units_caption(31, 32) and "ignores it" in active_units_caption(31, 32)
    assert "9 of 16" in active_units_caption(9, 16) and "the others stay" in active_units_caption(9, 16)
    assert active_units_caption(0, 4).startswith("None of the 4 dimensions")


def test_the_threshold_is_the_engines():
    import ui.bound
    from vae import evaluate

    assert ui.bound.ACTIVE_UNIT_NATS is evaluate.ACTIVE_UNIT_NATS
    assert "0.01" not in (Path(ui.bound.__file__).read_text().replace("ACTIVE_UNIT_NATS", ""))
