// The decoder in the browser: load onnxruntime-web once, one session per exported decoder, decode
// codes and paint the decoder's mean on a canvas. Shared by every live view (ui/components/*.js).
//
// Streamlit imports a component's own script from a blob: URL, so every URL here is made absolute
// against the page's origin. Everything costly lives on `window`, so it survives a view's re-mount.

// The one code the views of a page share (the sliders and the 2-D pad), re-exported for one import.
export { announce, listen, shared } from "./code.mjs";
export { clamp, dimLabel, el, fmt } from "./dom.mjs";

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

// A repaint loop with the latest request winning: `request(args)` asks for a frame; at most one
// decode runs at a time, at most one per animation frame, and stale requests are dropped.
export function scheduler(render) {
  let wanted = null;
  let busy = false;
  let alive = true;
  async function run() {
    if (busy || !alive || wanted === null) return;
    busy = true;
    const args = wanted;
    wanted = null;
    try {
      await render(args);
    } finally {
      busy = false;
      if (wanted !== null) requestAnimationFrame(run);
    }
  }
  return {
    request(args) {
      wanted = args;
      requestAnimationFrame(run);
    },
    stop() {
      alive = false;
    },
  };
}

// Frame timings (decode + paint, ms) kept for the benchmarks and browser tests.
export function record(ms) {
  (G.frames ??= []).push(ms);
  if (G.frames.length > 2000) G.frames.shift();
}

// One live picture of one code: `request(code)` repaints `canvas` (counting its frames in
// canvas.dataset.painted); `status` shows "Loading…" until the decoder is ready, then goes, or says
// why it failed (and `onFail(reason)` is told).
export function liveCanvas(data, canvas, status, onFail) {
  // The decoder's file downloads while the runtime compiles (the session then reads it from the cache).
  if (!G.sessions[data.model_url]) fetch(absolute(data.model_url)).catch(() => {});
  const handle = decoder(data);
  canvas.dataset.painted = "0";
  const frames = scheduler(async (code) => {
    const h = await handle;
    const t0 = performance.now();
    paint(canvas, await decode(h, code, 1, data.dim), data.shape);
    record(performance.now() - t0);
    canvas.dataset.painted = String(Number(canvas.dataset.painted) + 1);
  });
  handle.then(
    () => status.remove(),
    (e) => {
      status.textContent = `Live decoding failed: ${e.message || e}`;
      onFail?.(String(e.message || e));
    },
  );
  return frames;
}
