"""The Latent map's geometry in the browser (static/live/map_geometry.mjs, map_overlays.mjs) against the
server's (services.map_geometry, services.map_overlays): the same numbers for the same inputs. The JS
modules' own unit tests (tests/js/map_geometry.test.mjs) run in test_live_views.py with the others."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_live_views import _run_node
from vae_helpers import ROOT

from services import map_geometry as geo
from services import maps
from services.map_overlays import extent, map_overlays

GEOMETRY = (ROOT / "static" / "live" / "map_geometry.mjs").as_uri()
OVERLAYS = (ROOT / "static" / "live" / "map_overlays.mjs").as_uri()


def in_node(expression: str, **inputs) -> object:
    """What the JS ``expression`` gives, with the modules' exports and ``inputs`` (JSON) in scope."""
    script = (
        f"const g = await import({json.dumps(GEOMETRY)}); const o = await import({json.dumps(OVERLAYS)});"
        f"const inp = {json.dumps(inputs)};"
        f"console.log(JSON.stringify({expression}));"
    )
    return json.loads(_run_node(script))


def test_ticks_and_bounds_are_the_same_numbers():
    rng = np.random.default_rng(0)
    ranges = [(-1.37, 2.41), (0.0, 100.0), (-0.003, 0.0021), (5.0, 5.0), (-1234.5, 987.0), (0.1, 0.3)]
    ranges += [tuple(sorted(rng.normal(scale=10 ** rng.uniform(-3, 3), size=2).tolist())) for _ in range(30)]
    got = in_node("inp.r.map(([lo, hi]) => [g.ticks(lo, hi), g.ticks(lo, hi, 5)])", r=ranges)
    for (lo, hi), (six, five) in zip(ranges, got):
        for js, n in ((six, 6), (five, 5)):
            values, step, digits = geo.ticks(lo, hi, n)
            assert js["step"] == pytest.approx(step, rel=1e-12) and js["digits"] == digits
            np.testing.assert_allclose(js["values"], values, rtol=1e-12, atol=1e-15)
    pts = rng.normal(size=(5, 2, 40)).tolist()
    js = in_node("inp.p.map(([x, y]) => g.bounds(x, y))", p=pts)
    for (x, y), b in zip(pts, js):
        assert [b["x0"], b["x1"], b["y0"], b["y1"]] == pytest.approx(geo.bounds(x, y), rel=1e-12)


def test_the_inverse_and_the_ellipses_are_the_same_numbers():
    """A real PCA map: the browser's decoded code and drawn ellipses are the server's."""
    rng = np.random.default_rng(1)
    codes = rng.normal(size=(60, 6)).astype(np.float32) * [3, 2, 1, 1, 0.5, 0.1]
    lmap = maps.fit_map(codes, "pca")
    mean, basis = maps.inverse_projection(lmap)
    xy = rng.normal(size=(10, 2))
    inverse = {"mean": mean.tolist(), "basis": basis.tolist()}
    js = in_node("inp.xy.map(([x, y]) => Array.from(g.codeAt(inp.inv, x, y)))", xy=xy.tolist(), inv=inverse)
    np.testing.assert_allclose(js, maps.unproject(lmap, xy), rtol=1e-6, atol=1e-6)
    std = rng.uniform(0.05, 1.0, size=(60, 6)).astype(np.float32)
    (layer,) = map_overlays(lmap, std, pick=7)[:1]
    data = {"x": lmap.xy[:, 0].tolist(), "y": lmap.xy[:, 1].tolist()}
    lines = in_node("o.outlines(inp.layer, inp.data).map((l) => Array.from(l))", layer=layer, data=data)
    want = geo.ellipse_outline(lmap.xy[7], geo.ellipse_axes(maps.projected_covariances(std[7:8], lmap))[0], 1, 33)
    np.testing.assert_allclose(np.asarray(lines[0]).reshape(-1, 2), want, atol=2e-4)  # axes sent at 4 decimals


def test_label_placement_and_the_home_view_are_the_same():
    rng = np.random.default_rng(2)
    for trial in range(5):
        m = 12
        anchors = rng.uniform(0, 200, size=(m, 2)).tolist()
        widths = rng.uniform(10, 90, size=(m, 2)).tolist()
        box = [0, 0, 220, 220] if trial % 2 else None
        js = in_node("g.placeLabels(inp.a, inp.w, 14, 11, inp.box)", a=anchors, w=widths, box=box)
        assert js == geo.place_labels(anchors, widths, 14, 11, box)
    codes = rng.normal(size=(30, 2)).astype(np.float32)
    lmap = maps.fit_map(codes, "raw")
    layers = map_overlays(lmap, upload_xy=np.array([[4.0, -3.0]]), upload_names=["u.png"], square=(-1.6, 1.6))
    x, y = lmap.xy[:, 0].tolist(), lmap.xy[:, 1].tolist()
    got = in_node("o.extent({x: inp.x, y: inp.y, overlays: inp.layers})", x=x, y=y, layers=layers)
    assert [got["x0"], got["x1"], got["y0"], got["y1"]] == pytest.approx(extent(x, y, layers), rel=1e-12)
