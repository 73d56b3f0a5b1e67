// The Latent map view's DOM: the label legend (chips that hide a label), the two canvases of the plot
// (base: axes, points and overlays; over: the hovered and picked rings), and the side panel with the
// picture decoded under the mouse and the thumbnail of the point under it.

import { el } from "./dom.mjs";

export const PANEL = 150; // CSS pixels of the decoded picture and the thumbnail

export function layout(root, data) {
  const chips = data.names.map((name, j) => {
    const chip = el("button", { className: "chip", type: "button", title: "click to hide or show" }, [el("i"), name]);
    chip.firstChild.style.background = data.colours[j];
    return chip;
  });
  const legend = [el("span", { className: "title", textContent: "label:" }), ...chips];
  for (const d of data.overlays.filter((d) => d.kind === "stars" || d.kind === "rings")) {
    const mark = el("b", { textContent: d.kind === "stars" ? "★" : "○" });
    mark.style.color = d.style.colour;
    legend.push(el("span", { className: "chip key" }, [mark, d.name]));
  }
  const base = el("canvas", { className: "base" });
  const over = el("canvas", { className: "over" });
  const decoded = el("canvas", { className: "decoded empty" });
  const thumb = el("canvas", { className: "thumb empty" });
  const where = el("output", { className: "where", textContent: "Loading the decoder…" });
  const which = el("output", { className: "which", textContent: "Hover a point to see its image." });
  const note = el("div", { className: "note", textContent: data.note });
  const decodeBlock = data.inverse
    ? [el("div", { className: "head", textContent: "Decoded under the mouse" }), decoded, where, note]
    : [el("div", { className: "head", textContent: "Nothing to decode" }), note];
  const hint = "Click a point to select it · scroll to zoom · drag to pan · double-click to reset";
  root.replaceChildren(
    el("div", { className: "legend" }, legend),
    el("div", { className: "body" }, [
      el("div", { className: "plot" }, [base, over]),
      el("div", { className: "panel" }, [
        el("div", { className: "block" }, decodeBlock),
        el("div", { className: "block" }, [el("div", { className: "head", textContent: "Point under the mouse" }), thumb, which]),
      ]),
    ]),
    el("div", { className: "hint", textContent: hint }),
  );
  for (const c of [decoded, thumb]) {
    const scale = Math.max(1, Math.round(PANEL / data.sprite.width));
    c.width = data.sprite.width * scale;
    c.height = data.sprite.height * scale;
    c.dataset.painted = "0";
  }
  return { chips, base, over, decoded, thumb, where, which };
}

// Paint sprite-sheet cell i (points first, then uploads) on the thumbnail canvas; null clears it.
export function showThumb(ui, data, sprite, i) {
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
  const n = data.x.length;
  const up = data.overlays.find((d) => d.kind === "stars");
  ui.which.textContent = i < n ? `test image #${i} · ${data.names[data.label[i]]}` : `★${up.short[i - n]} ${up.title[i - n]}`;
}
