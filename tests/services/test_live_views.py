"""services.live_views: what the scrubber and the hover map are sent, and the scrubber's JavaScript path."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image
from vae_helpers import ROOT

from services import maps
from services.explore import path_at
from services.live_views import digest, map_payload, released_t, scrub_payload, sprite_sheet
from services.map_overlays import map_overlays
from ui.state import dim_label
from vae.images import to_pil

DECODER = {"model_url": "/app/static/models/decoder-x.onnx", "shape": [1, 8, 8], "dim": 3}


def sheet_image(sprite: dict) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(sprite["url"].removeprefix("data:image/png;base64,"))))


def test_the_sprite_sheet_holds_image_i_at_its_cell():
    images = torch.rand(10, 1, 8, 6, generator=torch.Generator().manual_seed(0))
    sprite = sprite_sheet(images)
    assert sprite == {**sprite, "cols": 4, "n": 10, "width": 6, "height": 8}
    sheet = np.asarray(sheet_image(sprite))
    assert sheet.shape == (3 * 8, 4 * 6)
    for i in (0, 3, 4, 9):
        r, c = divmod(i, 4)
        np.testing.assert_array_equal(sheet[r * 8 : (r + 1) * 8, c * 6 : (c + 1) * 6], np.asarray(to_pil(images[i])))
    rgb = sprite_sheet(torch.rand(2, 3, 4, 4))
    assert sheet_image(rgb).mode == "RGB" and rgb["cols"] == 2


def test_a_scrub_payload_names_its_path():
    za, zb = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.0, 1.0, -1.0])
    p = scrub_payload([("VAE · a", DECODER, za, zb)], "linear")
    assert p["models"] == [{"title": "VAE · a", "decoder": DECODER, "za": [1.0, 0.0, 2.0], "zb": [0.0, 1.0, -1.0]}]
    assert json.loads(json.dumps(p)) == p  # JSON as it is
    assert scrub_payload([("VAE · a", DECODER, za, zb)], "linear") == p  # the same path: the same data
    assert scrub_payload([("VAE · a", DECODER, za, zb)], "slerp")["path"] != p["path"]
    assert scrub_payload([("VAE · a", DECODER, za, zb + 1e-3)], "linear")["path"] != p["path"]
    assert p["path"] == digest({"method": "linear", "models": p["models"]})


def test_a_released_t_counts_on_its_own_path_only():
    p = scrub_payload([("m", DECODER, torch.zeros(3), torch.ones(3))], "linear")
    assert released_t({"t": {"t": 0.25, "path": p["path"]}}, p) == 0.25
    assert released_t({"t": {"t": 1.5, "path": p["path"]}}, p) == 1.0
    assert released_t({"t": {"t": 0.25, "path": "another"}}, p) is None
    for state in (
        None,
        {},
        {"t": None},
        {"t": {"t": "x", "path": p["path"]}},
        {"t": {"t": float("nan"), "path": p["path"]}},
    ):
        assert released_t(state, p) is None


def test_map_payload_of_a_pca_map_carries_its_inverse():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(30, 5)).astype(np.float32)
    lmap = maps.fit_map(codes, "pca")
    sprite = sprite_sheet(torch.rand(31, 1, 4, 4))
    up = lmap.place(codes[:1] + 0.1)
    layers = map_overlays(lmap, upload_xy=up, upload_names=["u.png"])
    p = map_payload(
        lmap, np.arange(30) % 3, ["a", "b", "c"], ["red", "green", "blue"], sprite, layers, ("PC 1", "PC 2")
    )
    assert json.loads(json.dumps(p)) == p
    assert p["method"] == "pca" and p["label"][:4] == [0, 1, 2, 0] and p["names"] == ["a", "b", "c"]
    np.testing.assert_allclose(np.stack([p["x"], p["y"]], 1), lmap.xy, atol=1e-4)
    (stars,) = p["overlays"]
    assert stars["kind"] == "stars" and stars["text"] == ["u.png"] and stars["short"] == ["1"]
    assert [stars["x"][0], stars["y"][0]] == pytest.approx(up[0], abs=1e-4)
    assert p["sprite"] == sprite and p["axes"] == ["PC 1", "PC 2"] and p["view_url"].endswith("/live/map_view.mjs")
    mean, basis = np.asarray(p["inverse"]["mean"]), np.asarray(p["inverse"]["basis"])
    # What the browser computes from a position: a code that the projection sends back to that position.
    z = mean + np.array([0.7, -1.2]) @ basis
    np.testing.assert_allclose(lmap.place(z[None]), [[0.7, -1.2]], atol=1e-5)


def test_map_payload_of_a_tsne_map_has_no_inverse():
    lmap = maps.LatentMap("tsne", np.zeros((4, 2), np.float32), np.zeros((4, 3), np.float32))
    layers = map_overlays(lmap, square=(-1.5, 1.5))
    p = map_payload(lmap, np.zeros(4), ["only"], ["red"], sprite_sheet(torch.rand(4, 1, 2, 2)), layers)
    assert p["inverse"] is None
    assert p["overlays"] == [{"id": "square", "kind": "rect", "x": [-1.5, 1.5], "y": [-1.5, 1.5]}]


def _node() -> str:
    """Debian's node (``make browser`` installs it); missing: a failure under CI, a skip elsewhere."""
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI"):
            pytest.fail("node is not installed: make browser installs Debian's nodejs")
        pytest.skip("node is not installed")
    return node


def _run_node(script: str) -> str:
    """What a node ES-module ``script`` prints."""
    out = subprocess.run([_node(), "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("path", sorted((ROOT / "tests" / "js").glob("*.test.mjs")), ids=lambda p: p.name)
def test_the_javascript_unit_tests_pass(path):
    """tests/js/*.test.mjs: node's own test runner, one file at a time."""
    out = subprocess.run([_node(), "--test", str(path)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_views_name_and_print_numbers_as_python_does():
    """static/live/dom.mjs's dimLabel and fmt against ui.state.dim_label and the server's captions (+.2f)."""
    values = [0.0, -0.0, 0.5, -1.25, 0.125, -0.375, 2.625, 2.675, -0.001, 1e-9, 3.999, -4.0]
    values += np.random.default_rng(0).normal(scale=2.0, size=50).round(3).tolist()
    module = (ROOT / "static" / "live" / "dom.mjs").as_uri()
    got = json.loads(
        _run_node(
            f"const {{ dimLabel, fmt }} = await import({json.dumps(module)});"
            f"console.log(JSON.stringify([[0, 1, 9, 31].map(dimLabel), {json.dumps(values)}.map(fmt)]));"
        )
    )
    assert got[0] == [dim_label(j) for j in (0, 1, 9, 31)]
    assert got[1] == [f"{v:+.2f}".replace("-", "−") for v in values]


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_the_scrubbers_javascript_walks_the_same_path(method):
    """ui/components/interpolate.js's pathAt against services.explore.path_at (what the rows decode)."""
    g = torch.Generator().manual_seed(1)
    za, zb = torch.randn(16, generator=g), torch.randn(16, generator=g)
    ts = [0.0, 0.1, 0.37, 0.5, 0.9, 1.0]
    module = (ROOT / "ui" / "components" / "interpolate.js").as_uri()
    script = (
        f"const {{ pathAt }} = await import({json.dumps(module)});"
        f"const [za, zb, ts] = {json.dumps([za.tolist(), zb.tolist(), ts])};"
        f"console.log(JSON.stringify(ts.map((t) => Array.from(pathAt(za, zb, t, {json.dumps(method)})))));"
    )
    np.testing.assert_allclose(json.loads(_run_node(script)), path_at(za, zb, ts, method).numpy(), atol=1e-5)
