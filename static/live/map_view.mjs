// The Latent map as a live view (mounted by ui/components/latent_map.js): a canvas scatter of the shown
// codes coloured by label, under and over it the overlays of services/map_overlays.py (ellipses, rings,
// the uploads' stars). Hovering decodes the position under the mouse in the browser where the projection
// has an inverse and shows the thumbnail of the point under it; a click on a point sends its index to
// Python (trigger "pick"). Scroll zooms, a drag pans, a double click resets.
//
// data: decoder (services.live.LiveDecoder.data()) and services.live_views.map_payload: method, x, y,
// label, names, colours, inverse {mean (D,), basis (2, D)} or null, axes, note, sprite {url, cols, n,
// width, height} (points first, then uploads), overlays [{id, kind, name, style, ...}].

import { livePictures } from "./decoder.mjs";
import { axes, context, M, marks, points } from "./map_draw.mjs";
import { codeAt, frame } from "./map_geometry.mjs";
import { layout, showThumb } from "./map_layout.mjs";
import { drawLayers, extent, outlines } from "./map_overlays.mjs";

const HIT = 8; // CSS pixels: how near the mouse a point must be to count as hovered
// Zoom, pan and hidden labels by map (method, points, bounds): a click's rerun re-mounts the view with new
// overlays, and the user's zoom must survive it; another map starts from its home view.
const kept = new Map();

// Everything one mounted map knows: its data, the view, the hovered and picked points, the canvases.
function state(root, data) {
  const home = extent(data);
  const key = JSON.stringify([data.method, data.x.length, home, data.x.slice(0, 8), data.y.slice(0, 8)]);
  const pick = data.overlays.find((d) => d.id === "pick1");
  return {
    root,
    data,
    home,
    key,
    ui: layout(root, data),
    n: data.x.length,
    stars: data.overlays.find((d) => d.kind === "stars") ?? { x: [], y: [] },
    lines: data.overlays.map((d) => (d.kind === "ellipses" ? outlines(d, data) : null)),
    hidden: new Set(kept.get(key)?.hidden ?? []),
    view: { ...(kept.get(key)?.view ?? home) },
    size: { w: 0, h: 0, dpr: 1 },
    hover: null, // index under the mouse (n + u for upload u)
    picked: pick ? pick.at[0] : null, // the selected point survives a rerun that redraws its overlays
    drawn: { ellipses: 0, labels: [] }, // what the latest drawBase drew (for the browser tests)
    sprite: null,
    frames: null,
    last: [0, 0], // the latest position asked for: the mean of PCA, the origin of raw codes at first
  };
}

const fr = (s) => frame(s.view, s.size, M);
const pos = (s, i) => (i < s.n ? [s.data.x[i], s.data.y[i]] : [s.stars.x[i - s.n], s.stars.y[i - s.n]]);

function drawBase(s) {
  if (!kept.has(s.key) && kept.size >= 16) kept.delete(kept.keys().next().value);
  kept.set(s.key, { view: { ...s.view }, hidden: [...s.hidden] });
  const ctx = context(s.ui.base, s.size);
  const f = fr(s);
  axes(ctx, f, s.view, s.size, getComputedStyle(s.root).color, s.data.axes);
  ctx.save();
  ctx.beginPath();
  ctx.rect(M.l, M.t, s.size.w - M.l - M.r, s.size.h - M.t - M.b);
  ctx.clip();
  const box = [M.l, M.t, s.size.w - M.r, s.size.h - M.b];
  const under = drawLayers(ctx, s.data, s.lines, f, s.hidden, true, box);
  points(ctx, s.data, f, s.hidden);
  const over = drawLayers(ctx, s.data, s.lines, f, s.hidden, false, box);
  ctx.restore();
  s.drawn = { ellipses: under.ellipses, labels: over.labels };
}

function drawOver(s) {
  const ctx = context(s.ui.over, s.size);
  const f = fr(s);
  const rings = [[s.picked, "#ff4b4b", 7], [s.hover, "white", 6]].filter(([i]) => i !== null);
  marks(ctx, rings.map(([i, colour, r]) => [f.sx(pos(s, i)[0]), f.sy(pos(s, i)[1]), colour, r]));
}

// The visible point (or upload) nearest to the mouse within HIT pixels, or null.
function nearest(s, px, py) {
  const f = fr(s);
  let [best, gap] = [null, HIT];
  for (let i = 0; i < s.n + s.stars.x.length; i++) {
    if (i < s.n && s.hidden.has(s.data.label[i])) continue;
    const [x, y] = pos(s, i);
    const d = Math.hypot(f.sx(x) - px, f.sy(y) - py);
    if (d <= gap) [best, gap] = [i, d];
  }
  return best;
}

// Decode the code at map position (x, y) (maps with an inverse only).
function decodeAt(s, x, y, since) {
  if (!s.data.inverse) return;
  s.last = [x, y];
  if (!s.frames) return; // still loading: the position is decoded once the decoder is ready
  s.ui.where.textContent = `${s.data.axes[0]} = ${x.toFixed(2)}, ${s.data.axes[1]} = ${y.toFixed(2)}`;
  s.frames.request({ z: codeAt(s.data.inverse, x, y), since });
}

function redraw(s) {
  drawBase(s);
  drawOver(s);
}

function resize(s) {
  const box = s.ui.base.parentElement.getBoundingClientRect();
  [s.size.w, s.size.h, s.size.dpr] = [Math.max(50, box.width), Math.max(50, box.height), window.devicePixelRatio || 1];
  for (const c of [s.ui.base, s.ui.over]) [c.width, c.height] = [Math.round(s.size.w * s.size.dpr), Math.round(s.size.h * s.size.dpr)];
  redraw(s);
}

function chips(s) {
  s.ui.chips.forEach((chip, j) => {
    chip.classList.toggle("off", s.hidden.has(j));
    chip.addEventListener("click", () => {
      s.hidden.has(j) ? s.hidden.delete(j) : s.hidden.add(j);
      chip.classList.toggle("off", s.hidden.has(j));
      drawBase(s);
    });
  });
}

function pointer(s, setTriggerValue) {
  const over = s.ui.over;
  const local = (e) => {
    const r = over.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  };
  let drag = null;
  over.addEventListener("pointerdown", (e) => {
    const [px, py] = local(e);
    drag = { px, py, view: { ...s.view }, moved: false };
    over.setPointerCapture(e.pointerId);
  });
  over.addEventListener("pointermove", (e) => {
    const [px, py] = local(e);
    if (drag && (drag.moved || Math.hypot(px - drag.px, py - drag.py) > 3)) {
      drag.moved = true;
      const f = frame(drag.view, s.size, M);
      const [ox, oy] = [(px - drag.px) / f.kx, (py - drag.py) / f.ky];
      s.view = { x0: drag.view.x0 - ox, x1: drag.view.x1 - ox, y0: drag.view.y0 + oy, y1: drag.view.y1 + oy };
      drawBase(s);
    }
    s.hover = nearest(s, px, py);
    showThumb(s.ui, s.data, s.sprite, s.hover);
    drawOver(s);
    decodeAt(s, fr(s).dx(px), fr(s).dy(py), e.timeStamp);
  });
  over.addEventListener("pointerup", (e) => {
    const i = drag && !drag.moved ? nearest(s, ...local(e)) : null;
    if (i !== null && i < s.n) {
      s.picked = i;
      drawOver(s);
      setTriggerValue("pick", i);
    }
    drag = null;
  });
  over.addEventListener("pointerleave", () => {
    s.hover = null;
    drawOver(s);
  });
  over.addEventListener("dblclick", () => {
    s.view = { ...s.home };
    redraw(s);
  });
  const wheel = (e) => {
    e.preventDefault();
    const [px, py] = local(e);
    const [x, y, k] = [fr(s).dx(px), fr(s).dy(py), Math.exp(e.deltaY * 0.0015)];
    s.view = { x0: x + (s.view.x0 - x) * k, x1: x + (s.view.x1 - x) * k, y0: y + (s.view.y0 - y) * k, y1: y + (s.view.y1 - y) * k };
    redraw(s);
  };
  over.addEventListener("wheel", wheel, { passive: false });
}

// For the browser tests: where point i is on the page, and what the view shows.
function probe(s) {
  s.root.__map = {
    client(i) {
      const r = s.ui.over.getBoundingClientRect();
      const f = fr(s);
      const [x, y] = pos(s, i);
      return { x: r.left + f.sx(x), y: r.top + f.sy(y), inside: f.inside(f.sx(x), f.sy(y)) };
    },
    hovered: () => s.hover,
    ellipses: () => s.drawn.ellipses,
    labels: () => s.drawn.labels,
    view: () => ({ ...s.view }),
  };
}

// Load the thumbnails and the decoder; the view is ready (data-ready) when both are, or says why not.
async function load(s) {
  const img = new Image();
  img.src = s.data.sprite.url;
  const thumbnails = img.decode().then(() => {
    s.sprite = img;
    if (s.hover !== null) showThumb(s.ui, s.data, s.sprite, s.hover);
  });
  if (s.data.inverse && s.data.decoder) {
    const { decoded } = s.ui;
    await new Promise((resolve, reject) => {
      s.frames = livePictures([{ data: s.data.decoder, canvas: decoded, code: ({ z }) => z }], null, {
        ready: resolve,
        failed: (reason) => reject(new Error(reason)),
        painted: ({ since }) => {
          decoded.classList.remove("empty");
          // From the mouse event to the painted picture (event and performance clocks share an origin).
          if (since !== null) (window.__vaeLive.hover ??= []).push(performance.now() - since);
        },
      });
    });
    decodeAt(s, ...s.last, null);
  }
  await thumbnails;
  s.root.dataset.ready = "1";
}

export function mount({ data, parentElement, setTriggerValue }) {
  const root = parentElement.querySelector(".vae-latent_map");
  root.removeAttribute("data-ready");
  const s = state(root, data);
  const observer = new ResizeObserver(() => resize(s));
  observer.observe(s.ui.base.parentElement);
  chips(s);
  pointer(s, setTriggerValue);
  probe(s);
  load(s).catch((e) => {
    s.ui.where.textContent = `Live decoding failed in this browser (${e.message || e}).`;
    root.dataset.error = String(e.message || e);
  });
  return () => {
    s.frames?.stop();
    observer.disconnect();
  };
}
