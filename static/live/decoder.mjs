// The decoder in the browser: load onnxruntime-web once, one session per exported decoder, decode
// codes and paint the decoder's mean on a canvas. Shared by every live view (ui/components/*.js).
//
// Streamlit imports a component's own script from a blob: URL, so every URL here is made absolute
// against the page's origin. Everything costly lives on `window`, so it survives a view's re-mount.

import { scheduler } from "./scheduler.mjs";

// What every view needs, re-exported for one import: the one code the views of a page share (the
// sliders and the 2-D pad), the DOM and number helpers, the repaint loop.
export { announce, listen, shared } from "./code.mjs";
export { all, clamp, dimLabel, el, fmt } from "./dom.mjs";
export { scheduler };

const G = (window.__vaeLive ??= { ort: null, sessions: {} });

export const absolute = (path) => new URL(path, window.location.origin).href;

function runtime(url) {
  G.ort ??= import(absolute(url)).then((ort) => {
    // No SharedArrayBuffer without cross-origin isolation: one thread, on the page's own thread
    // (a worker would copy every 28x28 frame twice for no gain).
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.proxy = false;
    return ort;
  });
  return G.ort;
}

// {ort, session} for the decoder at data.model_url (data as services.live.LiveDecoder.data()).
export function decoder(data) {
  G.sessions[data.model_url] ??= runtime(data.runtime_url).then(async (ort) => ({
    ort,
    session: await ort.InferenceSession.create(absolute(data.model_url), {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
    }),
  }));
  return G.sessions[data.model_url];
}

// Decode n codes (a Float32Array of n * dim values): the means, n * C * H * W values in [0, 1].
export async function decode(handle, codes, n, dim) {
  const { ort, session } = handle;
  const out = await session.run({ z: new ort.Tensor("float32", Float32Array.from(codes), [n, dim]) });
  return out.x.data;
}

// Paint image i of a decoded batch x (shape [C, H, W]) on a canvas, scaled with sharp pixels.
export function paint(canvas, x, shape, i = 0) {
  const [c, h, w] = shape;
  const small = (canvas.__small ??= new OffscreenCanvas(w, h));
  const sctx = small.getContext("2d");
  const img = sctx.createImageData(w, h);
  const px = img.data;
  const plane = h * w;
  const base = i * c * plane;
  for (let p = 0; p < plane; p++) {
    for (let k = 0; k < 3; k++) {
      // Grey images repeat their one channel; 8-bit as vae.images.to_pil (which rounds halves to even).
      const v = x[base + (c === 1 ? 0 : k) * plane + p];
      px[4 * p + k] = Math.min(255, Math.max(0, Math.round(v * 255)));
    }
    px[4 * p + 3] = 255;
  }
  sctx.putImageData(img, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
}

// Frame timings (decode + paint, ms) kept for the benchmarks and browser tests.
export function record(ms) {
  (G.frames ??= []).push(ms);
  if (G.frames.length > 2000) G.frames.shift();
}

// Live pictures, one per decoder: `request(args)` decodes each view's `code(args)` (a Float32Array) with
// its decoder, paints its canvas (counting frames in canvas.dataset.painted), records the time of the
// whole frame, then tells `painted(args)`. `status` (optional) shows "Loading…" until every decoder is
// ready, then goes and `ready()` is told; or `failed(reason)` is told and the status says why, in the
// text `failed` returns if it returns one.
// views: [{data (services.live.LiveDecoder.data()), canvas, code}].
export function livePictures(views, status, { ready, failed, painted } = {}) {
  const handles = Promise.all(
    views.map(({ data, canvas }) => {
      // The decoder's file downloads while the runtime compiles (the session then reads it from the cache).
      if (!G.sessions[data.model_url]) fetch(absolute(data.model_url)).catch(() => {});
      canvas.dataset.painted = "0";
      return decoder(data);
    }),
  );
  const frames = scheduler(async (args) => {
    const hs = await handles.catch(() => null);
    if (!hs) return; // the status says why
    const t0 = performance.now();
    for (const [k, { data, canvas, code }] of views.entries()) {
      paint(canvas, await decode(hs[k], code(args), 1, data.dim), data.shape);
      canvas.dataset.painted = String(Number(canvas.dataset.painted) + 1);
    }
    record(performance.now() - t0);
    painted?.(args);
  });
  handles.then(
    () => {
      status?.remove();
      ready?.();
    },
    (e) => {
      const reason = String(e.message || e);
      const text = failed?.(reason);
      if (status) status.textContent = text ?? `Live decoding failed: ${reason}`;
    },
  );
  return frames;
}

// One live picture of one code: `request(code)` repaints `canvas`, as livePictures; `onFail(reason)` is
// told if the decoder cannot load.
export function liveCanvas(data, canvas, status, onFail) {
  return livePictures([{ data, canvas, code: (z) => z }], status, { failed: onFail });
}
