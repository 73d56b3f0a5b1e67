"""ui.training: a run's curves are named for what the model has (an AE: no KL, no ELBO, no β)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ui.training import curves
from vae.config import ModelConfig


def _job(kind: str) -> SimpleNamespace:
    steps = [{"step": s, "loss": 200.0 - s, "recon": -(190.0 - s), "kl": 0.0 if kind == "ae" else 10.0} for s in (1, 2)]
    return SimpleNamespace(
        model_config=ModelConfig(kind=kind),
        steps=steps,
        epochs=[{"epoch": 1, "test_elbo": -180.0}],
        latest=SimpleNamespace(steps_per_epoch=2),
    )


@pytest.mark.parametrize(
    "kind, names",
    [
        ("vae", ["loss = −recon + β·KL", "−E_q[log p(x|z)]", "KL(q(z|x) ‖ N(0, I))", "test −ELBO"]),
        ("ae", ["loss = −log p(x|ẑ)", "test −log p(x|ẑ)"]),
    ],
)
def test_curves_name_the_terms_the_model_has(kind, names):
    fig = curves(_job(kind))
    assert [t.name for t in fig.data] == names
    assert list(fig.data[-1].x) == [2] and list(fig.data[-1].y) == [180.0]  # the test curve: one point an epoch
