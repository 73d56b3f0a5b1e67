// Small DOM and number helpers shared by every live view (ui/components/*.js), re-exported by
// decoder.mjs so that a view gets them with the one import it already makes.

// An element with properties and children: el("div", { className: "row" }, [label, input]).
export function el(tag, props = {}, children = []) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

// A signed value with two decimals and a true minus sign: +0.50, −1.25.
export const fmt = (v) => (v >= 0 ? "+" : "−") + Math.abs(v).toFixed(2);

// v limited to the axis a = {lo, hi}.
export const clamp = (v, a) => Math.min(a.hi, Math.max(a.lo, v));

// The one numbering of latent dimensions, as in the math (ui/state.dim_label): z1 ... zD for j = 0 ... D-1.
export const dimLabel = (j) => `z${j + 1}`;
