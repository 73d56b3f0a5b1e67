// The Latent map's pure geometry, the same numbers as services/map_geometry.py (tests/js check both on the
// same inputs): round axis ticks, padded bounds, a position's code under a linear inverse, ellipse
// outlines, labels placed so that they do not collide, and the data <-> screen transform of a view.

export const PAD = 0.05; // the home view adds this fraction of the data's span on each side
// Where a label may go around its anchor, in order of preference: (x, y) directions in screen pixels
// (y down): above, below, right, left, then the four diagonals.
export const LABEL_SPOTS = [[0, -1], [0, 1], [1, 0], [-1, 0], [1, -1], [-1, -1], [1, 1], [-1, 1]];

// About n round tick values covering [lo, hi], their step (1, 2 or 5 times a power of ten) and the
// decimals that print them.
export function ticks(lo, hi, n = 6) {
  if (!(hi > lo)) return { values: [lo], step: 1, digits: 2 };
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const r = raw / mag;
  const step = mag * (r >= 5 ? 10 : r >= 2 ? 5 : r >= 1.5 ? 2 : 1);
  const values = [];
  for (let i = Math.ceil(lo / step); i * step <= hi + step * 1e-9; i++) {
    values.push(Math.abs(i * step) < step * 1e-9 ? 0 : i * step);
  }
  return { values, step, digits: Math.max(0, -Math.floor(Math.log10(step))) };
}

// {x0, x1, y0, y1}: the range of the points (xs, ys) widened by pad of their span on each side (a span
// of zero becomes ±1 around the value).
export function bounds(xs, ys, pad = PAD) {
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  if (!(x1 > x0)) [x0, x1] = [x0 - 1, x0 + 1];
  if (!(y1 > y0)) [y0, y1] = [y0 - 1, y0 + 1];
  const [px, py] = [pad * (x1 - x0), pad * (y1 - y0)];
  return { x0: x0 - px, x1: x1 + px, y0: y0 - py, y1: y1 + py };
}

// The code at map position (x, y) under the inverse {mean (D,), basis (2, D)}: z = mean + basisᵀ (x, y).
export function codeAt({ mean, basis }, x, y) {
  return Float32Array.from(mean, (m, k) => m + basis[0][k] * x + basis[1][k] * y);
}

// The ±kσ ellipse [a, b, θ] around (cx, cy) as n points, closed (first = last): [x0, y0, x1, y1, ...].
export function ellipseOutline(cx, cy, [a, b, theta], k = 1, n = 49) {
  const out = new Float64Array(2 * n);
  const [c, s] = [Math.cos(theta), Math.sin(theta)];
  for (let i = 0; i < n; i++) {
    const t = i * ((2 * Math.PI) / (n - 1));
    const [u, v] = [k * a * Math.cos(t), k * b * Math.sin(t)];
    out[2 * i] = cx + c * u - s * v;
    out[2 * i + 1] = cy + s * u + c * v;
  }
  return out;
}

const overlaps = (r, boxes) => boxes.some((b) => r[0] < b[2] && b[0] < r[2] && r[1] < b[3] && b[1] < r[3]);
const inside = (r, box) => !box || (r[0] >= box[0] && r[1] >= box[1] && r[2] <= box[2] && r[3] <= box[3]);

// The label's centre relative to its anchor (screen pixels, y down) at LABEL_SPOTS[spot].
export function labelOffset(spot, width, height, gap) {
  const [ux, uy] = LABEL_SPOTS[spot];
  return [ux * (gap + width / 2), uy * (gap + height / 2)];
}

// Where each anchor's label goes so that no two labels overlap and none covers an anchor: anchors [[x, y]]
// in screen pixels, each label's widths [full text, short text], one height, gap the anchors' radius.
// Greedy in the anchors' order: the first free spot for the full text, else for the short one; inside box
// [x0, y0, x1, y1] if given. Returns [spot, 0 full | 1 short] per anchor, or null where neither fits.
export function placeLabels(anchors, widths, height, gap, box = null) {
  const taken = anchors.map(([x, y]) => [x - gap, y - gap, x + gap, y + gap]);
  return anchors.map(([x, y], i) => {
    for (let variant = 0; variant < widths[i].length; variant++) {
      const w = widths[i][variant];
      for (let spot = 0; spot < LABEL_SPOTS.length; spot++) {
        const [ox, oy] = labelOffset(spot, w, height, gap);
        const r = [x + ox - w / 2, y + oy - height / 2, x + ox + w / 2, y + oy + height / 2];
        if (inside(r, box) && !overlaps(r, taken)) {
          taken.push(r);
          return [spot, variant];
        }
      }
    }
    return null;
  });
}

// The data <-> screen transform of a view {x0, x1, y0, y1} on a canvas of size {w, h} (CSS pixels) with
// margins {l, r, t, b}: sx, sy to the screen, dx, dy back, and the data-to-pixel scales kx, ky.
export function frame(view, size, m) {
  const [pw, ph] = [size.w - m.l - m.r, size.h - m.t - m.b];
  const kx = pw / (view.x1 - view.x0);
  const ky = ph / (view.y1 - view.y0);
  return {
    kx,
    ky,
    sx: (x) => m.l + (x - view.x0) * kx,
    sy: (y) => m.t + ph - (y - view.y0) * ky,
    dx: (px) => view.x0 + (px - m.l) / kx,
    dy: (py) => view.y0 + (m.t + ph - py) / ky,
    inside: (px, py) => px > m.l && px < size.w - m.r && py > m.t && py < size.h - m.b,
  };
}
