// The Latent map as a live view: a canvas scatter of the shown codes (coloured by label, uploads as
// stars). Hovering decodes the position under the mouse in the browser (raw codes: z = (x, y); PCA: the
// inverse of the projection; t-SNE has none) and shows the thumbnail of the point under it. A click on a
// point sends its index to Python (trigger "pick"). Scroll zooms, a drag pans, a double click resets.
//
// data: decoder (services.live.LiveDecoder.data()) and services.live_views.map_payload: method, x, y,
// label, names, colours, uploads [{x, y, name}], inverse {mean (D,), basis (2, D)} or null, axes,
// square [lo, hi] or null, sprite {url, cols, n, width, height} (points first, then uploads), ellipses
// {pick, axes [a, b, θ], all [[a, b, θ], …] or null} or null: the posterior q(z|x)'s ellipses in the plane
// (semi-axes a, b of the ±1σ ellipse, θ its angle from the x axis), drawn under the points.

const abs = (path) => new URL(path, window.location.origin).href;
const M = { l: 56, r: 10, t: 10, b: 42 }; // CSS pixels around the plotting area: ticks and titles
const HIT = 8; // CSS pixels: how near the mouse a point must be to count as hovered
const PANEL = 150; // CSS pixels of the decoded picture and the thumbnail
// Zoom, pan and hidden labels by map (method, points, bounds): a click's rerun re-mounts the view with
// new ellipses, and the user's zoom must survive it; another map starts from its home view.
const kept = new Map();

function el(tag, props = {}, children = []) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

// Round tick values covering [lo, hi], about n of them.
function ticks(lo, hi, n = 6) {
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = mag * (raw / mag >= 5 ? 10 : raw / mag >= 2 ? 5 : raw / mag >= 1.5 ? 2 : 1);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return { values: out, digits: Math.max(0, -Math.floor(Math.log10(step))) };
}

function bounds(data) {
  const xs = [...data.x, ...data.uploads.map((u) => u.x), ...(data.square ?? [])];
  const ys = [...data.y, ...data.uploads.map((u) => u.y), ...(data.square ?? [])];
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  if (!(x1 > x0)) [x0, x1] = [x0 - 1, x0 + 1];
  if (!(y1 > y0)) [y0, y1] = [y0 - 1, y0 + 1];
  const px = 0.05 * (x1 - x0);
  const py = 0.05 * (y1 - y0);
  return { x0: x0 - px, x1: x1 + px, y0: y0 - py, y1: y1 + py };
}

function layout(root, data) {
  const chips = data.names.map((name, j) => {
    const chip = el("button", { className: "chip", type: "button" }, [el("i"), name]);
    chip.firstChild.style.background = data.colours[j];
    chip.title = "click to hide or show";
    return chip;
  });
  if (data.uploads.length) chips.push(el("span", { className: "chip star" }, [el("b", { textContent: "★" }), "your uploads"]));
  const base = el("canvas", { className: "base" });
  const over = el("canvas", { className: "over" });
  const decoded = el("canvas", { className: "decoded empty" });
  const thumb = el("canvas", { className: "thumb empty" });
  const where = el("output", { className: "where", textContent: "Loading the decoder…" });
  const which = el("output", { className: "which", textContent: "Hover a point to see its image." });
  const how = {
    raw: "z = (x, y): the raw code",
    pca: `z = mean + componentsᵀ · (${data.axes[0]}, ${data.axes[1]}): the inverse of the PCA projection`,
  }[data.method];
  const decodeBlock = data.inverse
    ? [el("div", { className: "head", textContent: "Decoded under the mouse" }), decoded, where, el("div", { className: "note", textContent: how })]
    : [el("div", { className: "head", textContent: "Nothing to decode" }), el("div", { className: "note", textContent: "t-SNE has no inverse: a position on this map is no code, so nothing is decoded here." })];
  root.replaceChildren(
    el("div", { className: "legend" }, [el("span", { className: "title", textContent: "label:" }), ...chips]),
    el("div", { className: "body" }, [
      el("div", { className: "plot" }, [base, over]),
      el("div", { className: "panel" }, [
        el("div", { className: "block" }, decodeBlock),
        el("div", { className: "block" }, [el("div", { className: "head", textContent: "Point under the mouse" }), thumb, which]),
      ]),
    ]),
    el("div", { className: "hint", textContent: "Click a point to select it · scroll to zoom · drag to pan · double-click to reset" }),
  );
  return { chips, base, over, decoded, thumb, where, which };
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  const root = parentElement.querySelector(".vae-latent_map");
  root.removeAttribute("data-ready");
  const ui = layout(root, data);
  const n = data.x.length;
  const home = bounds(data);
  const key = JSON.stringify([data.method, n, home, data.x.slice(0, 8), data.y.slice(0, 8)]);
  const hidden = new Set(kept.get(key)?.hidden ?? []);
  let view = { ...(kept.get(key)?.view ?? home) };
  let hover = null; // index under the mouse (n + u for upload u)
  let picked = data.ellipses?.pick ?? null; // the selected point survives a rerun that redraws its ellipses
  let alive = true;
  let sched = null;
  let sprite = null;
  let last = [0, 0]; // the latest position asked for: the mean of PCA, the origin of raw codes at first
  const size = { w: 0, h: 0, dpr: 1 };

  const sx = (x) => M.l + ((x - view.x0) / (view.x1 - view.x0)) * (size.w - M.l - M.r);
  const sy = (y) => M.t + (1 - (y - view.y0) / (view.y1 - view.y0)) * (size.h - M.t - M.b);
  const dx = (px) => view.x0 + ((px - M.l) / (size.w - M.l - M.r)) * (view.x1 - view.x0);
  const dy = (py) => view.y0 + (1 - (py - M.t) / (size.h - M.t - M.b)) * (view.y1 - view.y0);
  const pos = (i) => (i < n ? [data.x[i], data.y[i]] : [data.uploads[i - n].x, data.uploads[i - n].y]);

  for (const [c, w] of [[ui.decoded, data.sprite.width], [ui.thumb, data.sprite.width]]) {
    const scale = Math.max(1, Math.round(PANEL / w));
    c.width = w * scale;
    c.height = data.sprite.height * scale;
    c.dataset.painted = "0";
  }

  function context(canvas) {
    const ctx = canvas.getContext("2d");
    ctx.setTransform(size.dpr, 0, 0, size.dpr, 0, 0);
    ctx.clearRect(0, 0, size.w, size.h);
    return ctx;
  }

  function star(ctx, x, y, r) {
    ctx.beginPath();
    for (let k = 0; k < 10; k++) {
      const a = -Math.PI / 2 + (k * Math.PI) / 5;
      const rr = k % 2 ? r * 0.45 : r;
      ctx.lineTo(x + rr * Math.cos(a), y + rr * Math.sin(a));
    }
    ctx.closePath();
    ctx.fill();
    ctx.stroke();
  }

  function axes(ctx, ink) {
    ctx.strokeStyle = "rgba(128, 128, 128, 0.25)";
    ctx.fillStyle = ink;
    ctx.font = "11px sans-serif";
    ctx.lineWidth = 1;
    const tx = ticks(view.x0, view.x1);
    const ty = ticks(view.y0, view.y1, 5);
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const v of tx.values) {
      ctx.beginPath();
      ctx.moveTo(sx(v), M.t);
      ctx.lineTo(sx(v), size.h - M.b);
      ctx.stroke();
      ctx.fillText(v.toFixed(tx.digits), sx(v), size.h - M.b + 4);
    }
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const v of ty.values) {
      ctx.beginPath();
      ctx.moveTo(M.l, sy(v));
      ctx.lineTo(size.w - M.r, sy(v));
      ctx.stroke();
      ctx.fillText(v.toFixed(ty.digits), M.l - 5, sy(v));
    }
    ctx.font = "12px sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "bottom";
    ctx.fillText(data.axes[0], M.l + (size.w - M.l - M.r) / 2, size.h - 2);
    ctx.save();
    ctx.translate(13, M.t + (size.h - M.t - M.b) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = "middle";
    ctx.fillText(data.axes[1], 0, 0);
    ctx.restore();
  }

  // The ±kσ ellipse (a, b, θ) around point i as a path (in data units, so it follows zoom and aspect).
  function ellipsePath(ctx, i, [a, b, theta], k) {
    const kx = (size.w - M.l - M.r) / (view.x1 - view.x0);
    const ky = (size.h - M.t - M.b) / (view.y1 - view.y0);
    ctx.save();
    ctx.translate(sx(data.x[i]), sy(data.y[i]));
    ctx.scale(kx, -ky);
    ctx.rotate(theta);
    ctx.moveTo(k * a, 0);
    ctx.ellipse(0, 0, Math.max(k * a, 1e-12), Math.max(k * b, 1e-12), 0, 0, 2 * Math.PI);
    ctx.restore();
  }

  let drawn = 0; // ellipses drawn by the latest drawBase (for the browser tests)
  function drawEllipses(ctx) {
    drawn = 0;
    const e = data.ellipses;
    if (!e) return;
    if (e.all) {
      ctx.lineWidth = 1;
      data.names.forEach((_, j) => {
        if (hidden.has(j)) return;
        ctx.strokeStyle = data.colours[j];
        ctx.fillStyle = data.colours[j];
        ctx.beginPath();
        for (let i = 0; i < n; i++) {
          if (data.label[i] !== j) continue;
          ellipsePath(ctx, i, e.all[i], 1);
          drawn++;
        }
        ctx.globalAlpha = 0.04;
        ctx.fill();
        ctx.globalAlpha = 0.18;
        ctx.stroke();
      });
      ctx.globalAlpha = 1;
    }
    if (e.pick !== null && e.pick < n) {
      ctx.strokeStyle = "#ff4b4b";
      ctx.lineWidth = 2;
      for (const [k, dash] of [[1, []], [2, [6, 4]]]) {
        ctx.setLineDash(dash);
        ctx.beginPath();
        ellipsePath(ctx, e.pick, e.axes, k);
        ctx.stroke();
        drawn++;
      }
      ctx.setLineDash([]);
    }
  }

  function drawBase() {
    if (!kept.has(key) && kept.size >= 16) kept.delete(kept.keys().next().value);
    kept.set(key, { view: { ...view }, hidden: [...hidden] });
    const ctx = context(ui.base);
    axes(ctx, getComputedStyle(root).color);
    ctx.save();
    ctx.beginPath();
    ctx.rect(M.l, M.t, size.w - M.l - M.r, size.h - M.t - M.b);
    ctx.clip();
    if (data.square) {
      const [lo, hi] = data.square;
      ctx.setLineDash([6, 4]);
      ctx.strokeStyle = "grey";
      ctx.lineWidth = 1.5;
      ctx.strokeRect(sx(lo), sy(hi), sx(hi) - sx(lo), sy(lo) - sy(hi));
      ctx.setLineDash([]);
    }
    drawEllipses(ctx);
    ctx.globalAlpha = 0.8;
    data.names.forEach((_, j) => {
      if (hidden.has(j)) return;
      ctx.fillStyle = data.colours[j];
      ctx.beginPath();
      for (let i = 0; i < n; i++) {
        if (data.label[i] !== j) continue;
        const x = sx(data.x[i]);
        const y = sy(data.y[i]);
        ctx.moveTo(x + 3, y);
        ctx.arc(x, y, 3, 0, 2 * Math.PI);
      }
      ctx.fill();
    });
    ctx.globalAlpha = 1;
    ctx.font = "12px sans-serif";
    ctx.textAlign = "center";
    for (const u of data.uploads) {
      ctx.fillStyle = "gold";
      ctx.strokeStyle = "black";
      ctx.lineWidth = 1.5;
      star(ctx, sx(u.x), sy(u.y), 11);
      ctx.lineWidth = 3; // a dark halo keeps the name readable over the points
      ctx.strokeStyle = "rgba(0, 0, 0, 0.75)";
      ctx.strokeText(u.name, sx(u.x), sy(u.y) - 14);
      ctx.fillStyle = "white";
      ctx.fillText(u.name, sx(u.x), sy(u.y) - 14);
    }
    ctx.restore();
  }

  function drawOver() {
    const ctx = context(ui.over);
    for (const [i, colour, r] of [[picked, "#ff4b4b", 7], [hover, "white", 6]]) {
      if (i === null) continue;
      const [x, y] = pos(i);
      ctx.strokeStyle = colour;
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(sx(x), sy(y), r, 0, 2 * Math.PI);
      ctx.stroke();
    }
  }

  // The visible point (or upload) nearest to the mouse within HIT pixels, or null.
  function nearest(px, py) {
    let best = null;
    let gap = HIT;
    for (let i = 0; i < n + data.uploads.length; i++) {
      if (i < n && hidden.has(data.label[i])) continue;
      const [x, y] = pos(i);
      const d = Math.hypot(sx(x) - px, sy(y) - py);
      if (d <= gap) [best, gap] = [i, d];
    }
    return best;
  }

  function showThumb(i) {
    const ctx = ui.thumb.getContext("2d");
    ctx.clearRect(0, 0, ui.thumb.width, ui.thumb.height);
    ui.thumb.classList.toggle("empty", i === null || !sprite);
    if (i === null || !sprite) {
      ui.which.textContent = "Hover a point to see its image.";
      return;
    }
    const { cols, width: w, height: h } = data.sprite;
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(sprite, (i % cols) * w, Math.floor(i / cols) * h, w, h, 0, 0, ui.thumb.width, ui.thumb.height);
    ui.thumb.dataset.painted = String(Number(ui.thumb.dataset.painted) + 1);
    ui.which.textContent = i < n ? `test image #${i} · ${data.names[data.label[i]]}` : `★ ${data.uploads[i - n].name}`;
  }

  // Decode the code at map position (x, y) (raw and PCA maps only).
  function decodeAt(x, y, since) {
    if (!data.inverse) return;
    last = [x, y];
    if (!sched) return; // still loading: the position is decoded once the decoder is ready
    const { mean, basis } = data.inverse;
    const z = Float32Array.from(mean, (m, k) => m + basis[0][k] * x + basis[1][k] * y);
    ui.where.textContent = `${data.axes[0]} = ${x.toFixed(2)}, ${data.axes[1]} = ${y.toFixed(2)}`;
    sched.request({ z, since });
  }

  function resize() {
    const box = ui.base.parentElement.getBoundingClientRect();
    size.w = Math.max(50, box.width);
    size.h = Math.max(50, box.height);
    size.dpr = window.devicePixelRatio || 1;
    for (const c of [ui.base, ui.over]) {
      c.width = Math.round(size.w * size.dpr);
      c.height = Math.round(size.h * size.dpr);
    }
    drawBase();
    drawOver();
  }
  const observer = new ResizeObserver(resize);
  observer.observe(ui.base.parentElement);

  ui.chips.forEach((chip, j) => {
    if (j >= data.names.length) return;
    chip.classList.toggle("off", hidden.has(j));
    chip.addEventListener("click", () => {
      hidden.has(j) ? hidden.delete(j) : hidden.add(j);
      chip.classList.toggle("off", hidden.has(j));
      drawBase();
    });
  });

  let drag = null;
  const local = (e) => {
    const r = ui.over.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  };
  ui.over.addEventListener("pointerdown", (e) => {
    const [px, py] = local(e);
    drag = { px, py, view: { ...view }, moved: false };
    ui.over.setPointerCapture(e.pointerId);
  });
  ui.over.addEventListener("pointermove", (e) => {
    const [px, py] = local(e);
    if (drag && (drag.moved || Math.hypot(px - drag.px, py - drag.py) > 3)) {
      drag.moved = true;
      const kx = (drag.view.x1 - drag.view.x0) / (size.w - M.l - M.r);
      const ky = (drag.view.y1 - drag.view.y0) / (size.h - M.t - M.b);
      const [ox, oy] = [(px - drag.px) * kx, (py - drag.py) * ky];
      view = { x0: drag.view.x0 - ox, x1: drag.view.x1 - ox, y0: drag.view.y0 + oy, y1: drag.view.y1 + oy };
      drawBase();
    }
    hover = nearest(px, py);
    showThumb(hover);
    drawOver();
    decodeAt(dx(px), dy(py), e.timeStamp);
  });
  ui.over.addEventListener("pointerup", (e) => {
    const [px, py] = local(e);
    if (drag && !drag.moved) {
      const i = nearest(px, py);
      if (i !== null && i < n) {
        picked = i;
        drawOver();
        setTriggerValue("pick", i);
      }
    }
    drag = null;
  });
  ui.over.addEventListener("pointerleave", () => {
    hover = null;
    drawOver();
  });
  ui.over.addEventListener("dblclick", () => {
    view = { ...home };
    drawBase();
    drawOver();
  });
  ui.over.addEventListener(
    "wheel",
    (e) => {
      e.preventDefault();
      const [px, py] = local(e);
      const [x, y] = [dx(px), dy(py)];
      const k = Math.exp(e.deltaY * 0.0015);
      view = { x0: x + (view.x0 - x) * k, x1: x + (view.x1 - x) * k, y0: y + (view.y0 - y) * k, y1: y + (view.y1 - y) * k };
      drawBase();
      drawOver();
    },
    { passive: false },
  );

  // For the browser tests: where point i is on the page, and what the view shows.
  root.__map = {
    client(i) {
      const r = ui.over.getBoundingClientRect();
      const [x, y] = pos(i);
      return { x: r.left + sx(x), y: r.top + sy(y), inside: sx(x) > M.l && sx(x) < size.w - M.r && sy(y) > M.t && sy(y) < size.h - M.b };
    },
    hovered: () => hover,
    ellipses: () => drawn,
    view: () => ({ ...view }),
  };

  const thumbnails = (async () => {
    const img = new Image();
    img.src = data.sprite.url;
    await img.decode();
    sprite = img;
    if (hover !== null) showThumb(hover);
  })();
  (async () => {
    if (data.inverse && data.decoder) {
      const live = await import(abs(data.decoder.module_url));
      const handle = await live.decoder(data.decoder);
      if (!alive) return;
      sched = live.scheduler(async ({ z, since }) => {
        const started = performance.now();
        const x = await live.decode(handle, z, 1, data.decoder.dim);
        if (!alive) return;
        live.paint(ui.decoded, x, data.decoder.shape);
        ui.decoded.classList.remove("empty");
        ui.decoded.dataset.painted = String(Number(ui.decoded.dataset.painted) + 1);
        live.record(performance.now() - started);
        // From the mouse event to the painted picture (event and performance clocks share an origin).
        if (since !== null) (window.__vaeLive.hover ??= []).push(performance.now() - since);
      });
      decodeAt(...last, null);
    }
    await thumbnails;
    root.dataset.ready = "1";
  })().catch((e) => {
    ui.where.textContent = `Live decoding failed in this browser (${e.message || e}).`;
    root.dataset.error = String(e.message || e);
  });

  return () => {
    alive = false;
    sched?.stop();
    observer.disconnect();
  };
}
