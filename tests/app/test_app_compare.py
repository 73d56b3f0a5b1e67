"""The Compare page under AppTest: the committed β sweep by default, an AE among the models, mixed
shapes refused, too few models; widgets by key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest
from vae_helpers import no_exception, open_app

from vae.checkpoint import save
from vae.config import ModelConfig
from vae.models import build_model

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "6_Compare.py")
SWEEP = ["moons-vae-beta0.5", "moons-vae", "moons-vae-beta4"]

pytestmark = pytest.mark.skipif(
    not all((ROOT / "checkpoints" / f"{n}.safetensors").exists() for n in SWEEP),
    reason="the moons β sweep is not committed",
)


def chart(at: AppTest, key: str) -> dict:
    (c,) = [c for c in at.get("plotly_chart") if c.proto.id and key in c.proto.id]
    return json.loads(c.proto.spec)


def scoped(at: AppTest, kind: str, name: str):
    """The one widget of ``kind`` whose key is ``name``, scoped to a model (ui.state.scoped) or not."""
    (w,) = [w for w in getattr(at, kind) if (w.key or "").split("@")[0] == name]
    return w


def points(rd: dict) -> list[str]:
    """The labels of the rate–distortion plot's points, in drawing order (by rate)."""
    return [t for p in rd["data"] if p.get("mode") == "markers+text" for t in p["text"]]


def n_images(at: AppTest) -> int:
    return sum(len(img.proto.imgs) for img in at.get("image"))


def run(models: list[str] | None = None) -> AppTest:
    at = open_app(PAGE, timeout=300)
    if models is not None:
        scoped(at, "multiselect", "cmp_models").set_value(models).run()
        no_exception(at)
    return at


def test_the_sweep_is_shown_side_by_side_by_default():
    at = run()
    assert not at.error
    assert scoped(at, "multiselect", "cmp_models").value == SWEEP
    rows = at.dataframe[0].value
    assert list(rows["model"]) == SWEEP and list(rows["β"]) == ["0.5", "1", "4"]
    rate = [float(v) for v in rows["rate KL"]]
    assert rate[0] > rate[1] > rate[2] > 0  # β buys rate: the larger β, the fewer nats in the code
    elbo, dist = [float(v) for v in rows["ELBO"]], [float(v) for v in rows["distortion −log p(x|z)"]]
    assert all(abs(e + d + r) < 0.02 for e, d, r in zip(elbo, dist, rate))  # ELBO = −(D + R), rounded to 0.01
    used = [int(v.split(" / ")[0]) for v in rows["active units"]]
    assert used[0] >= used[1] >= used[2]
    rd = chart(at, "cmp_rd")
    assert points(rd) == [f"{n} · β = {b}" for n, b in zip(SWEEP[::-1], ("4", "1", "0.5"))]  # by rate, each named
    assert "rate" in rd["layout"]["xaxis"]["title"]["text"] and "distortion" in rd["layout"]["yaxis"]["title"]["text"]
    kl = chart(at, "cmp_kl")
    assert [t["name"] for t in kl["data"]] == [f"{n} · β = {b}" for n, b in zip(SWEEP, ("0.5", "1", "4"))]
    # reconstructions: the inputs and a row a model; prior samples: a row a model; the path: its ends and a row a model
    assert n_images(at) == (1 + 3) + 3 + (1 + 3)
    gap = [float(v) for v in rows["gap IWAE − ELBO"]]
    iwae = [float(v) for v in rows["IWAE (k=100)"]]
    assert gap == pytest.approx([i - e for i, e in zip(iwae, elbo)], abs=0.011)
    mc = at.dataframe[1].value
    assert list(mc["model"]) == [f"{n} · β = {b}" for n, b in zip(SWEEP, ("0.5", "1", "4"))]
    assert scoped(at, "select_slider", "cmp_mc_L").value == 10
    sd_10 = [float(v) for v in mc["MC spread (sd)"]]
    assert all(v > 0 for v in sd_10)
    # Both estimates estimate each model's ELBO: near the table's (other images, so only roughly).
    assert all(abs(float(a) - float(b)) < 10 for a, b in zip(mc["MC estimate, L=10"], mc["closed-form-KL estimate"]))
    scoped(at, "select_slider", "cmp_mc_L").set_value(100).run()
    no_exception(at)
    mc = at.dataframe[1].value
    assert "MC estimate, L=100" in mc.columns
    assert all(float(v) < s for v, s in zip(mc["MC spread (sd)"], sd_10))  # about 1/sqrt(10) of it
    assert [s.value for s in at.subheader] == [
        "Rate against distortion",
        "The Monte Carlo estimate of the ELBO, per model",
        "Reconstructions of the same test images",
        "Prior samples, the same codes for every model",
        "The same interpolation",
        "KL per dimension and active units",
    ]
    assert any(e.label == "What am I seeing?" for e in at.expander)


def test_an_ae_gets_its_distortion_only_and_its_prior_row_is_captioned():
    at = run(["moons-vae", "moons-ae"])
    assert not at.error
    rows = at.dataframe[0].value
    ae = rows[rows["model"] == "moons-ae"].iloc[0]
    assert ae["β"] == "— (AE)" and ae["rate KL"] == ae["ELBO"] == ae["IWAE (k=100)"] == ae["active units"] == "—"
    assert float(ae["distortion −log p(x|z)"]) > 0
    rd = chart(at, "cmp_rd")
    assert any("moons-ae (AE" in a["text"] for a in rd["layout"]["annotations"])  # a line, not a point
    assert any("an AE has no prior" in c.value for c in at.caption)
    assert [t["name"] for t in chart(at, "cmp_kl")["data"]] == ["moons-vae · β = 1"]
    assert list(at.dataframe[1].value["model"]) == ["moons-vae · β = 1"]  # an AE has no q(z|x) to draw from


def test_mixed_shapes_are_refused_with_one_message(tmp_path, monkeypatch):
    trained = tmp_path / "trained"
    trained.mkdir()
    cfg = ModelConfig(image_shape=(3, 32, 32), hidden=(8,), latent_dim=2)
    model = build_model(cfg, torch.Generator().manual_seed(0))
    save(trained / "rgb.safetensors", model, dataset={"name": "folder:/no/such/folder", "image_shape": [3, 32, 32]})
    monkeypatch.setenv("VAE_TRAINED_DIR", str(trained))
    at = run(["moons-vae", "rgb (trained here)"])
    assert [e.value for e in at.error] == [
        "These models take images of different shapes (moons-vae: 1×28×28; rgb: 3×32×32), so they cannot be "
        "shown on the same inputs. Pick models of one image shape."
    ]
    assert not at.get("plotly_chart") and not at.get("image")


def test_one_model_asks_for_another_and_the_seed_redraws_only_the_pictures():
    at = run(["moons-vae"])
    assert any("Pick two to four models" in i.value for i in at.info) and not at.get("plotly_chart")
    scoped(at, "multiselect", "cmp_models").set_value(["moons-vae", "moons-vae-beta4"]).run()
    no_exception(at)
    table = at.dataframe[0].value.to_dict()
    urls = [i.url for img in at.get("image") for i in img.proto.imgs]
    scoped(at, "number_input", "cmp_seed").set_value(1).run()
    no_exception(at)
    assert at.dataframe[0].value.to_dict() == table  # the numbers are over fixed test images
    after = [i.url for img in at.get("image") for i in img.proto.imgs]
    assert after[0] != urls[0]  # other test images
    assert after[-3:] == urls[-3:]  # the interpolation keeps its ends


def test_a_model_switch_starts_from_the_new_models_own_choices_and_names_every_point():
    if not all((ROOT / "checkpoints" / f"{n}.safetensors").exists() for n in ("mnist-vae-conv", "mnist-vae-2d")):
        pytest.skip("the MNIST checkpoints are not committed")
    at = run(["moons-vae", "moons-ae"])
    scoped(at, "select_slider", "cmp_mc_L").set_value(100).run()
    assert "MC estimate, L=100" in at.dataframe[1].value.columns
    at.selectbox(key="model_picker").set_value("mnist-vae-conv").run()  # the sidebar's model: MNIST now
    no_exception(at)
    assert not at.error
    # The moons models, and the L chosen for them, are not carried over: MNIST's own defaults show.
    assert scoped(at, "multiselect", "cmp_models").value == ["mnist-vae-conv", "mnist-vae-2d"]
    assert scoped(at, "select_slider", "cmp_mc_L").value == 10
    assert "MC estimate, L=10" in at.dataframe[1].value.columns
    # Two β = 1 models: each point is named by its model, not only by its β.
    assert sorted(points(chart(at, "cmp_rd"))) == ["mnist-vae-2d · β = 1", "mnist-vae-conv · β = 1"]
