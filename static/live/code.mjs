// The one latent code the live views of a page share (the sliders and the 2-D pad): each view changes
// it in place and tells the others, so every view follows the mouse, not only the one being dragged.
//
// A code belongs to a token (one model, one start point): a view re-mounted with the same token (a
// rerun that changed its own settings) picks up the code where the user left it, and a new token (a new
// model or "Start from") starts afresh from the code Python sent.

const G = (window.__vaeLive ??= { ort: null, sessions: {} });
const codes = (G.codes ??= {});
const bus = (G.bus ??= new EventTarget());

// The live code (a Float32Array) of `token`, made from `start` by the first view that asks.
export function shared(token, start) {
  codes[token] ??= Float32Array.from(start);
  return codes[token];
}

// Tell the other views that the code of `token` changed (`from` names the view that changed it).
export function announce(token, from) {
  bus.dispatchEvent(new CustomEvent("code", { detail: { token, from } }));
}

// Call fn() whenever another view changes the code of `token`; returns the function that stops it.
export function listen(token, me, fn) {
  const handler = (e) => {
    if (e.detail.token === token && e.detail.from !== me) fn();
  };
  bus.addEventListener("code", handler);
  return () => bus.removeEventListener("code", handler);
}
