"""services.scoring: percentiles, the test-set reference, scoring uploads and test images (tiny, CPU)."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from services.scoring import (
    Request,
    Result,
    percentile_of,
    process_upload,
    reference_scores,
    score_all,
    score_one,
    score_test_image,
    summary_rows,
    typicality,
)
from vae.config import ModelConfig
from vae.models import build_model
from vae.objectives import model_input


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def moon_png(size: int = 64, bg: int = 0, fg: int = 255) -> bytes:
    img = Image.new("L", (size, size), bg)
    ImageDraw.Draw(img).ellipse((size // 5, size // 5, 4 * size // 5, 4 * size // 5), fill=fg)
    return png(img)


# --------------------------------------------------------------------------- percentile_of


def test_percentile_known_values():
    ref = np.arange(1, 101, dtype=float)
    assert percentile_of(50.5, ref) == 50.0
    assert percentile_of(0.0, ref) == 0.0
    assert percentile_of(1000.0, ref) == 100.0
    assert percentile_of(50.0, ref) == 49.5  # a tie counts half
    assert percentile_of(3.0, [3.0, 3.0, 3.0]) == 50.0
    assert percentile_of(2.0, torch.tensor([1.0, 3.0])) == 50.0


def test_percentile_edge_cases():
    ref = [1.0, 2.0, float("nan"), float("-inf")]  # non-finite references are ignored
    assert percentile_of(1.5, ref) == 50.0
    assert math.isnan(percentile_of(float("nan"), ref))
    assert percentile_of(float("-inf"), ref) == 0.0
    assert percentile_of(float("inf"), ref) == 100.0
    with pytest.raises(ValueError):
        percentile_of(1.0, [])


def test_percentile_is_monotonic():
    ref = np.random.default_rng(0).normal(size=200)
    scores = np.linspace(-4, 4, 50)
    pcts = [percentile_of(s, ref) for s in scores]
    assert all(a <= b for a, b in zip(pcts, pcts[1:]))
    assert 0 <= min(pcts) and max(pcts) <= 100


def test_typicality_words():
    assert "atypical" in typicality(0.2)
    assert typicality(60) == "typical for this model"
    assert "higher than almost every" in typicality(99.5)
    assert typicality(float("nan")) == "unknown"


# --------------------------------------------------------------------------- reference scores


def test_reference_shapes_and_determinism(tiny_model, moons):
    x = moons.test_x  # 64 images
    ref = reference_scores(tiny_model, x, limit=40, n_samples=2, seed=1, batch_size=16)
    assert ref.shape == (40,) and ref.dtype == np.float64 and np.isfinite(ref).all()
    again = reference_scores(tiny_model, x, limit=40, n_samples=2, seed=1, batch_size=16)
    np.testing.assert_array_equal(ref, again)
    other = reference_scores(tiny_model, x, limit=40, n_samples=2, seed=2)
    assert not np.allclose(ref, other)
    assert reference_scores(tiny_model, x, limit=1000, n_samples=1).shape == (64,)  # limit beyond N


def test_reference_leaves_global_rng_alone(tiny_model, moons):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    reference_scores(tiny_model, moons.test_x[:8], n_samples=1)
    assert torch.equal(torch.rand(3), expected)


def test_reference_progress(tiny_model, moons):
    seen = []
    reference_scores(
        tiny_model, moons.test_x, limit=50, n_samples=1, batch_size=20, progress=lambda i, n: seen.append((i, n))
    )
    assert seen == [(20, 50), (40, 50), (50, 50)]


def test_binarized_model_scores_one_fixed_binarization(moons):
    """The reference and an upload go through model_input: the same binary images on every call."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(image_shape=(1, 28, 28), hidden=(16,), latent_dim=2, binarize=True))
    x = moons.test_x[:2]
    r = score_one("t0", x[0], model, iwae_k=2, n_samples=1)
    assert torch.equal(r.x, model_input(x[:1], model.config)[0]) and set(r.x.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(r.x, score_one("t0", x[0], model, iwae_k=2, n_samples=1).x)


def test_reference_matches_upload_scoring_for_binarized_model(moons):
    """A test image scored as an upload gets the same ELBO as in the reference (same binarization)."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(image_shape=(1, 28, 28), hidden=(16,), latent_dim=2, binarize=True))
    ref = reference_scores(model, moons.test_x[:3], n_samples=4000, seed=0)
    r = score_one("t0", moons.test_x[0], model, ref, iwae_k=10, n_samples=4000)
    assert r.ok and set(r.x.unique().tolist()) <= {0.0, 1.0}
    assert r.score.elbo == pytest.approx(ref[0], abs=0.5)  # same input; only Monte Carlo noise differs
    assert any("binarized" in n for n in r.notes)


# --------------------------------------------------------------------------- one upload


def test_process_upload_scores_a_moon(tiny_model):
    ref = np.linspace(-600, -400, 101)
    r = process_upload("moon.png", moon_png(), tiny_model, reference=ref, iwae_k=20, n_samples=2)
    assert r.ok, r.error
    s = r.score
    assert math.isfinite(s.elbo) and s.kl >= 0 and s.iwae_k == 20
    assert s.elbo == pytest.approx(s.recon - s.kl, abs=1e-3)
    assert r.x.shape == (1, 28, 28) and r.recon.shape == (1, 28, 28)
    assert 0 <= r.recon.min() and r.recon.max() <= 1
    assert r.error_map.shape == (28, 28)
    assert r.percentile == percentile_of(s.elbo, ref)
    labels = [label for label, _ in r.prep.steps]
    assert labels[0] == "original" and labels[-1].startswith("resized to 28x28")
    assert r.prep.steps[0][1].size == (64, 64) and r.prep.steps[-1][1].size == (28, 28)  # full size: ui shrinks
    row = r.row()
    assert row["file"] == "moon.png" and row["status"] == "ok" and row["ELBO"] == s.elbo


def test_process_upload_is_deterministic(tiny_model):
    a = process_upload("m.png", moon_png(), tiny_model, iwae_k=10, n_samples=2, seed=3)
    b = process_upload("m.png", moon_png(), tiny_model, iwae_k=10, n_samples=2, seed=3)
    assert a.score == b.score and a.percentile is None


def test_light_background_is_inverted(tiny_model):
    r = process_upload("light.png", moon_png(bg=255, fg=0), tiny_model, iwae_k=5, n_samples=1)
    assert r.ok and r.prep.inverted
    assert any("inverted" in n for n in r.notes)
    assert float(r.x[0, 0, 0]) < 0.1  # the background became dark


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "empty"),
        (b"not an image", "not an image this app can read"),
        (moon_png()[:60], "truncated"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "PNG, JPEG"),  # never sent to Ghostscript
        (b"%PDF-1.4\n", "PNG, JPEG"),
    ],
    ids=["empty", "text", "truncated", "eps", "pdf"],
)
def test_bad_uploads_give_one_message_naming_the_file(tiny_model, data, words):
    r = process_upload("bad.png", data, tiny_model)
    assert not r.ok and r.score is None
    assert r.error.startswith("bad.png: ") and words in r.error
    assert r.row()["status"] == r.error


def test_ae_has_no_kl_nor_iwae():
    torch.manual_seed(0)
    ae = build_model(ModelConfig(kind="ae", image_shape=(1, 28, 28), hidden=(16,), latent_dim=2))
    r = process_upload("m.png", moon_png(), ae, reference=np.array([-1e9, 1e9]))
    assert r.ok and r.score.kl == 0 and r.score.iwae is None and r.score.iwae_k == 0
    assert r.score.elbo == r.score.recon and r.percentile == 50.0


@pytest.mark.parametrize("fmt", ["JPEG", "GIF", "BMP", "WEBP", "TIFF"])
def test_accepted_formats(tiny_model, fmt):
    buf = io.BytesIO()
    Image.open(io.BytesIO(moon_png())).convert("RGB").save(buf, format=fmt)
    assert process_upload(f"moon.{fmt.lower()}", buf.getvalue(), tiny_model, iwae_k=2, n_samples=1).ok


def test_rgb_model_gets_rgb_input():
    torch.manual_seed(0)
    model = build_model(ModelConfig(image_shape=(3, 16, 16), hidden=(16,), latent_dim=2, likelihood="gaussian"))
    img = Image.new("RGBA", (40, 30), (255, 0, 0, 128))
    r = process_upload("red.png", png(img), model, dark_background=False, iwae_k=4, n_samples=1)
    assert r.ok and r.x.shape == (3, 16, 16) and r.error_map.shape == (16, 16)


def test_score_one_rejects_wrong_shape(tiny_model):
    r = score_one("x", torch.zeros(1, 16, 16), tiny_model)
    assert not r.ok and "needs" in r.error


def test_binarized_input_is_a_full_size_step(moons):
    torch.manual_seed(0)
    model = build_model(ModelConfig(image_shape=(1, 28, 28), hidden=(16,), latent_dim=2, binarize=True))
    r = process_upload("moon.png", moon_png(), model, iwae_k=2, n_samples=1)
    label, img = r.prep.steps[-1]
    assert label == "binarized (model input)" and img.size == (28, 28)
    assert set(np.unique(np.asarray(img)).tolist()) <= {0, 255}


def test_a_test_image_is_scored_without_preprocessing(tiny_model, moons):
    r = score_test_image("test image #0", moons.test_x[0], tiny_model, iwae_k=2)
    assert r.ok and r.prep is None and torch.equal(r.x, moons.test_x[0])
    assert any("no preprocessing" in n for n in r.notes)


# --------------------------------------------------------------------------- many images


def test_score_all_keeps_order_reports_progress_and_never_raises():
    def score(req: Request) -> Result:
        if req.name == "boom":
            raise RuntimeError("out of memory")
        return Result(req.name)

    seen = []
    reqs = [Request("a", index=0), Request("boom", data=b"x"), Request("c", data=b"y")]
    results = score_all(reqs, score, lambda i, n, name: seen.append((i, n, name)))
    assert [r.name for r in results] == ["a", "boom", "c"]
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error == "boom: could not be scored (RuntimeError: out of memory)"
    assert seen == [(0, 3, "a"), (1, 3, "boom"), (2, 3, "c")]
    assert score_all([], score) == []


def test_summary_rows_for_a_vae_and_an_ae(tiny_model):
    good = process_upload("m.png", moon_png(), tiny_model, reference=np.array([-1e9, 1e9]), iwae_k=2, n_samples=1)
    bad = process_upload("bad.png", b"", tiny_model)
    vae_rows = summary_rows([good, bad], deterministic=False, has_reference=True)
    assert list(vae_rows[0]) == ["file", "ELBO", "KL", "IWAE", "percentile", "status"]
    assert vae_rows[0]["percentile"] == 50.0 and vae_rows[1]["status"] == bad.error
    ae_rows = summary_rows([good], deterministic=True, has_reference=False)
    assert ae_rows == [{"file": "m.png", "status": "ok", "log p(x|ẑ)": good.score.elbo}]
