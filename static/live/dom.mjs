// Small DOM and number helpers shared by every live view (ui/components/*.js), re-exported by
// decoder.mjs so that a view gets them with the one import it already makes.

// An element with properties and children: el("div", { className: "row" }, [label, input]).
export function el(tag, props = {}, children = []) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

// A signed value with two decimals and a true minus sign, as Python's f"{v:+.2f}" with "−" for "-" (the
// server's captions of the same code): +0.50, −1.25, and −0.00 for -0 and -0.001. toFixed rounds an exact
// tie away from zero, Python to the even digit; the only ties a double holds are odd multiples of 1/8.
export function fmt(v) {
  const a = Math.abs(v);
  const n = Math.floor(a * 100); // exact for a tie: 100 a = n + 1/2
  const tie = Number.isInteger(a * 8) && !Number.isInteger(a * 4);
  const digits = tie ? ((n % 2 ? n + 1 : n) / 100).toFixed(2) : a.toFixed(2);
  return (v < 0 || Object.is(v, -0) ? "−" : "+") + digits;
}

// v limited to the axis a = {lo, hi}.
export const clamp = (v, a) => Math.min(a.hi, Math.max(a.lo, v));

// The one numbering of latent dimensions, as in the math (ui/state.dim_label): z1 ... zD for j = 0 ... D-1.
export const dimLabel = (j) => `z${j + 1}`;

// One function that calls each of fns: a view's clean-up (stop its frames, stop listening).
export const all =
  (...fns) =>
  () => {
    for (const fn of fns) fn();
  };
