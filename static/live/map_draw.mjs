// The Latent map's base drawing: the axes with round ticks, the points by label, and the rings of the
// hovered and the picked point on the overlay canvas.

import { ticks } from "./map_geometry.mjs";

export const M = { l: 56, r: 10, t: 10, b: 42 }; // CSS pixels around the plotting area: ticks and titles
export const DOT = 3; // CSS pixels: a point's radius

// A 2-D context for the canvas at the device pixel ratio, cleared.
export function context(canvas, size) {
  const ctx = canvas.getContext("2d");
  ctx.setTransform(size.dpr, 0, 0, size.dpr, 0, 0);
  ctx.clearRect(0, 0, size.w, size.h);
  return ctx;
}

export function axes(ctx, fr, view, size, ink, titles) {
  ctx.strokeStyle = "rgba(128, 128, 128, 0.25)";
  ctx.fillStyle = ink;
  ctx.font = "11px sans-serif";
  ctx.lineWidth = 1;
  const tx = ticks(view.x0, view.x1);
  const ty = ticks(view.y0, view.y1, 5);
  [ctx.textAlign, ctx.textBaseline] = ["center", "top"];
  for (const v of tx.values) {
    ctx.beginPath();
    ctx.moveTo(fr.sx(v), M.t);
    ctx.lineTo(fr.sx(v), size.h - M.b);
    ctx.stroke();
    ctx.fillText(v.toFixed(tx.digits), fr.sx(v), size.h - M.b + 4);
  }
  [ctx.textAlign, ctx.textBaseline] = ["right", "middle"];
  for (const v of ty.values) {
    ctx.beginPath();
    ctx.moveTo(M.l, fr.sy(v));
    ctx.lineTo(size.w - M.r, fr.sy(v));
    ctx.stroke();
    ctx.fillText(v.toFixed(ty.digits), M.l - 5, fr.sy(v));
  }
  ctx.font = "12px sans-serif";
  [ctx.textAlign, ctx.textBaseline] = ["center", "bottom"];
  ctx.fillText(titles[0], M.l + (size.w - M.l - M.r) / 2, size.h - 2);
  ctx.save();
  ctx.translate(13, M.t + (size.h - M.t - M.b) / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = "middle";
  ctx.fillText(titles[1], 0, 0);
  ctx.restore();
}

// The visible points, one path per label colour.
export function points(ctx, data, fr, hidden) {
  ctx.globalAlpha = 0.8;
  data.names.forEach((_, j) => {
    if (hidden.has(j)) return;
    ctx.fillStyle = data.colours[j];
    ctx.beginPath();
    for (let i = 0; i < data.x.length; i++) {
      if (data.label[i] !== j) continue;
      const [x, y] = [fr.sx(data.x[i]), fr.sy(data.y[i])];
      ctx.moveTo(x + DOT, y);
      ctx.arc(x, y, DOT, 0, 2 * Math.PI);
    }
    ctx.fill();
  });
  ctx.globalAlpha = 1;
}

// Rings [[x, y, colour, radius]] in screen pixels (the picked and the hovered point).
export function marks(ctx, rings) {
  ctx.lineWidth = 2;
  for (const [x, y, colour, r] of rings) {
    ctx.strokeStyle = colour;
    ctx.beginPath();
    ctx.arc(x, y, r, 0, 2 * Math.PI);
    ctx.stroke();
  }
}
