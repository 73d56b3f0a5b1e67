// The Latent map's overlays (services/map_overlays.py describes them, ui.figures.styled names and styles
// them; the fallback figure draws the same layers): rectangles, posterior ellipses, rings and the uploads'
// stars with labels placed so that they do not collide. Pure drawing on a 2-D context, no DOM.

import { bounds, ellipseOutline, labelOffset, placeLabels } from "./map_geometry.mjs";

export const UNDER = new Set(["rect", "ellipses"]); // drawn under the points; the other kinds over them
export const OUTLINE = 33; // points of an ellipse's outline, as ui.figures.ellipse_lines draws it

// The home view: the points, the stars and the rectangles, padded (services.map_overlays.extent).
export function extent(data) {
  const xs = [...data.x];
  const ys = [...data.y];
  for (const d of data.overlays) {
    if (d.kind === "stars" || d.kind === "rect") {
      xs.push(...d.x);
      ys.push(...d.y);
    }
  }
  return bounds(xs, ys);
}

// An ellipse layer's outlines in data units: computed once, zoom and pan only move them on the screen.
export function outlines(layer, data) {
  return layer.at.map((i, e) => ellipseOutline(data.x[i], data.y[i], layer.axes[e], layer.k, OUTLINE));
}

function trace(ctx, line, fr) {
  ctx.moveTo(fr.sx(line[0]), fr.sy(line[1]));
  for (let p = 2; p < line.length; p += 2) ctx.lineTo(fr.sx(line[p]), fr.sy(line[p + 1]));
}

// Items of a layer by colour: its style's, else each point's label colour (skipping hidden labels).
function byColour(layer, data, hidden) {
  const groups = new Map();
  layer.at.forEach((i, e) => {
    const colour = layer.style.colour ?? data.colours[data.label[i]];
    if (layer.style.colour === null && hidden.has(data.label[i])) return;
    if (!groups.has(colour)) groups.set(colour, []);
    groups.get(colour).push(e);
  });
  return groups;
}

function ellipses(ctx, layer, lines, data, fr, hidden) {
  const { style } = layer;
  let count = 0;
  ctx.lineWidth = style.width;
  ctx.setLineDash(style.dash ?? []);
  for (const [colour, items] of byColour(layer, data, hidden)) {
    ctx.beginPath();
    for (const e of items) trace(ctx, lines[e], fr);
    ctx.strokeStyle = colour;
    ctx.fillStyle = colour;
    if (style.fill) {
      ctx.globalAlpha = style.fill;
      ctx.fill();
    }
    ctx.globalAlpha = style.alpha ?? 1;
    ctx.stroke();
    count += items.length;
  }
  ctx.globalAlpha = 1;
  ctx.setLineDash([]);
  return count;
}

function rings(ctx, layer, data, fr, hidden) {
  const { style } = layer;
  ctx.strokeStyle = style.colour;
  ctx.lineWidth = style.width;
  ctx.beginPath();
  for (const i of layer.at) {
    if (hidden.has(data.label[i])) continue;
    const [x, y] = [fr.sx(data.x[i]), fr.sy(data.y[i])];
    ctx.moveTo(x + style.radius, y);
    ctx.arc(x, y, style.radius, 0, 2 * Math.PI);
  }
  ctx.stroke();
}

function rect(ctx, layer, fr) {
  const [[x0, x1], [y0, y1]] = [layer.x, layer.y];
  ctx.setLineDash(layer.style.dash ?? []);
  ctx.strokeStyle = layer.style.colour;
  ctx.lineWidth = layer.style.width;
  ctx.strokeRect(fr.sx(x0), fr.sy(y1), fr.sx(x1) - fr.sx(x0), fr.sy(y0) - fr.sy(y1));
  ctx.setLineDash([]);
}

export function star(ctx, x, y, r) {
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

// The stars and their labels (full name, else the short number, else none: never two on each other);
// returns the labels' screen boxes [x0, y0, x1, y1, text] (null: no label).
function stars(ctx, layer, fr, box) {
  const { style } = layer;
  const at = layer.x.map((x, u) => [fr.sx(x), fr.sy(layer.y[u])]);
  [ctx.fillStyle, ctx.strokeStyle, ctx.lineWidth] = [style.colour, style.edge, style.width];
  for (const [x, y] of at) star(ctx, x, y, style.radius);
  ctx.font = `${style.font}px sans-serif`;
  [ctx.textAlign, ctx.textBaseline] = ["center", "middle"];
  const widths = layer.text.map((t, u) => [ctx.measureText(t).width, ctx.measureText(layer.short[u]).width]);
  const h = style.font + 2;
  return placeLabels(at, widths, h, style.radius, box).map((got, u) => {
    if (!got) return null;
    const [text, w] = [[layer.text, layer.short][got[1]][u], widths[u][got[1]]];
    const [ox, oy] = labelOffset(got[0], w, h, style.radius);
    const [x, y] = [at[u][0] + ox, at[u][1] + oy];
    [ctx.lineWidth, ctx.strokeStyle] = [3, "rgba(0, 0, 0, 0.75)"]; // a dark halo keeps it readable
    ctx.strokeText(text, x, y);
    ctx.fillStyle = "white";
    ctx.fillText(text, x, y);
    return [x - w / 2, y - h / 2, x + w / 2, y + h / 2, text];
  });
}

// Draw the layers under (under = true) or over the points; `lines` holds each ellipse layer's outlines
// (by index). Returns how many ellipses were drawn and where the star labels went.
export function drawLayers(ctx, data, lines, fr, hidden, under, box) {
  const out = { ellipses: 0, labels: [] };
  data.overlays.forEach((layer, l) => {
    if (UNDER.has(layer.kind) !== under) return;
    if (layer.kind === "rect") rect(ctx, layer, fr);
    else if (layer.kind === "ellipses") out.ellipses += ellipses(ctx, layer, lines[l], data, fr, hidden);
    else if (layer.kind === "rings") rings(ctx, layer, data, fr, hidden);
    else if (layer.kind === "stars") out.labels = stars(ctx, layer, fr, box);
  });
  return out;
}
