// Unit tests of the Latent map's pure geometry and overlays (static/live/map_geometry.mjs, map_overlays.mjs)
// that need no DOM. tests/services/test_map_geometry.py runs them (node --test) and checks the same
// functions against services/map_geometry.py on the same inputs.
import assert from "node:assert/strict";
import { test } from "node:test";

import { bounds, codeAt, ellipseOutline, frame, labelOffset, placeLabels, ticks } from "../../static/live/map_geometry.mjs";
import { extent, outlines } from "../../static/live/map_overlays.mjs";

const close = (a, b, tol = 1e-9) => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);

test("ticks are round, evenly spaced and cover the range", () => {
  const { values, step, digits } = ticks(-1.2, 1.3);
  assert.equal(step, 0.5);
  assert.deepEqual(values, [-1, -0.5, 0, 0.5, 1]);
  assert.equal(digits, 1);
  assert.equal(ticks(-1.37, 2.41).step, 1);
  assert.deepEqual(ticks(0, 100, 5).values, [0, 50, 100]); // steps round up: 20 becomes 50
  assert.equal(ticks(3, 3).values.length, 1); // an empty range: one tick, no endless loop
  for (const v of ticks(-0.003, 0.0021).values) assert.ok(Number.isFinite(v) && !Object.is(v, -0));
});

test("bounds pad the data by 5 % and give an empty span a width", () => {
  const b = bounds([0, 10], [-1, 1]);
  assert.deepEqual(b, { x0: -0.5, x1: 10.5, y0: -1.1, y1: 1.1 });
  assert.deepEqual(bounds([2], [3], 0), { x0: 1, x1: 3, y0: 2, y1: 4 });
});

test("codeAt is mean + basisᵀ (x, y)", () => {
  const z = codeAt({ mean: [1, 2, 3], basis: [[1, 0, 0], [0, 0.5, 2]] }, 2, -1);
  assert.deepEqual(Array.from(z), [3, 1.5, 1]);
});

test("an ellipse outline is closed, k·a along θ and k·b across it", () => {
  const line = ellipseOutline(1, 2, [2, 0.5, Math.PI / 2], 2, 5); // t = 0, π/2, π, 3π/2, 2π
  close(line[0], 1);
  close(line[1], 6); // the long axis points up: (1, 2) + 2·2·(0, 1)
  close(line[2], 0); // then across: (1, 2) + 2·0.5·(−1, 0)
  close(line[3], 2);
  close(line[8], line[0]);
  close(line[9], line[1]);
});

test("labels never overlap each other nor a star, and fall back to the short text", () => {
  const anchors = [...Array.from({ length: 9 }, (_, i) => [100 + 4 * i, 100 + (i % 2)]), [300, 300]];
  const widths = anchors.map(() => [80, 10]);
  const got = placeLabels(anchors, widths, 14, 11);
  const boxes = got.map((g, i) => {
    if (!g) return null;
    const w = widths[i][g[1]];
    const [ox, oy] = labelOffset(g[0], w, 14, 11);
    const [x, y] = [anchors[i][0] + ox, anchors[i][1] + oy];
    return [x - w / 2, y - 7, x + w / 2, y + 7];
  });
  assert.deepEqual(got[0], [0, 0]); // the first label goes above its star
  assert.deepEqual(got[9], [0, 0]); // a lone star too
  const placed = boxes.filter(Boolean);
  for (const [i, a] of placed.entries()) {
    for (const b of placed.slice(i + 1)) assert.ok(!(a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]));
    for (const [x, y] of anchors) assert.ok(!(a[0] < x + 11 && x - 11 < a[2] && a[1] < y + 11 && y - 11 < a[3]));
  }
  assert.ok(got.some((g) => g === null), "where no label fits, none");
  assert.deepEqual(placeLabels([[100, 100]], [[100, 10]], 14, 11, [60, 60, 140, 140]), [[0, 1]]); // the short one
  assert.equal(placeLabels([[5, 5]], [[80, 10]], 14, 11, [0, 0, 20, 20])[0], null); // no room in the box
});

test("frame maps the view onto the plot area and back", () => {
  const f = frame({ x0: -1, x1: 1, y0: 0, y1: 4 }, { w: 300, h: 250 }, { l: 50, r: 50, t: 10, b: 40 });
  close(f.sx(-1), 50);
  close(f.sx(1), 250);
  close(f.sy(0), 210); // y grows upward
  close(f.sy(4), 10);
  close(f.dx(f.sx(0.3)), 0.3);
  close(f.dy(f.sy(2.5)), 2.5);
  assert.ok(f.inside(150, 100) && !f.inside(20, 100));
});

test("the home view holds the points, the stars and the grid's square", () => {
  const data = {
    x: [0, 1],
    y: [0, 1],
    overlays: [
      { kind: "stars", x: [3], y: [-2] },
      { kind: "rect", x: [-1, 1], y: [-1, 1] },
      { kind: "rings", at: [0] },
    ],
  };
  assert.deepEqual(extent(data), bounds([0, 1, 3, -1, 1], [0, 1, -2, -1, 1]));
  const lines = outlines({ at: [1], axes: [[1, 1, 0]], k: 2 }, data);
  assert.equal(lines.length, 1);
  close(lines[0][0], 3); // (1, 1) + 2·(1, 0)
});
