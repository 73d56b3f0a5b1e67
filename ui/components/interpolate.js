// The Interpolate page's scrubber: drag t along the path from A to B and each model's decoder paints
// the code at t in the browser, on every input event. Python hears t on release only (state "t", tagged
// with the path it was chosen on, so a t left from another path is ignored).
//
// data (services.live_views.scrub_payload): method ("linear" | "slerp"), path (a digest), and per
// model: title, decoder (services.live.LiveDecoder.data()), za and zb (D,).

const abs = (path) => new URL(path, window.location.origin).href;
const STEPS = 1000; // positions of the range input: finer than any pixel of its track
const SIZE = 168; // CSS pixels of each picture: 6 per pixel of a 28x28 image

function el(tag, props = {}, children = []) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

// The code at t, as services.explore.path_at (slerp falls back to linear for (anti)parallel ends).
export function pathAt(za, zb, t, method) {
  let a = 1 - t;
  let b = t;
  if (method === "slerp") {
    let dot = 0;
    let n0 = 0;
    let n1 = 0;
    for (let k = 0; k < za.length; k++) {
      dot += za[k] * zb[k];
      n0 += za[k] * za[k];
      n1 += zb[k] * zb[k];
    }
    const omega = Math.acos(Math.min(1, Math.max(-1, dot / (Math.sqrt(n0) * Math.sqrt(n1) + 1e-12))));
    if (Math.abs(omega) >= 1e-4 && Math.abs(Math.PI - omega) >= 1e-4) {
      a = Math.sin((1 - t) * omega) / Math.sin(omega);
      b = Math.sin(t * omega) / Math.sin(omega);
    }
  }
  return Float32Array.from(za, (v, k) => a * v + b * zb[k]);
}

function layout(root, data) {
  const pictures = data.models.map((m) => {
    const [, h, w] = m.decoder.shape;
    const scale = Math.max(1, Math.round(SIZE / w));
    const canvas = el("canvas", { width: w * scale, height: h * scale });
    canvas.style.width = `${w * scale}px`;
    canvas.dataset.painted = "0";
    return { canvas, figure: el("figure", {}, [canvas, el("figcaption", { textContent: m.title })]) };
  });
  const input = el("input", { type: "range", min: 0, max: STEPS, step: 1, value: STEPS / 2 });
  input.setAttribute("aria-label", "t along the path from A (0) to B (1)");
  const readout = el("output", { className: "readout" });
  const status = el("div", { className: "status", textContent: "Loading the decoder…" });
  root.replaceChildren(
    el(
      "div",
      { className: "pictures" },
      pictures.map((p) => p.figure),
    ),
    el("div", { className: "track" }, [el("span", { textContent: "A" }), input, el("span", { textContent: "B" })]),
    readout,
    status,
  );
  return { canvases: pictures.map((p) => p.canvas), input, readout, status };
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  const root = parentElement.querySelector(".vae-interpolate");
  const view = layout(root, data);
  const { canvases, input, readout, status } = view;
  let alive = true;
  let sched = null;
  const tNow = () => Number(input.value) / STEPS;
  const show = () => {
    readout.textContent = `t = ${tNow().toFixed(3)} · ${data.method} path`;
  };
  show();

  (async () => {
    const live = await import(abs(data.models[0].decoder.module_url));
    const handles = await Promise.all(data.models.map((m) => live.decoder(m.decoder)));
    if (!alive) return;
    sched = live.scheduler(async (t) => {
      const started = performance.now();
      for (let k = 0; k < data.models.length; k++) {
        const m = data.models[k];
        const x = await live.decode(handles[k], pathAt(m.za, m.zb, t, data.method), 1, m.decoder.dim);
        if (!alive) return;
        live.paint(canvases[k], x, m.decoder.shape);
        canvases[k].dataset.painted = String(Number(canvases[k].dataset.painted) + 1);
      }
      live.record(performance.now() - started);
      root.dataset.t = String(t); // what the pictures show now (for the browser tests)
    });
    sched.request(tNow());
    status.textContent = "";
    root.dataset.ready = "1";
  })().catch((e) => {
    status.textContent = `Live decoding failed in this browser (${e.message || e}); the rows below are decoded on the server.`;
    root.dataset.error = String(e.message || e);
  });

  input.addEventListener("input", () => {
    show();
    sched?.request(tNow());
  });
  // "change" comes on release (and after each key press): the one moment Python needs to hear of it.
  input.addEventListener("change", () => setStateValue("t", { t: tNow(), path: data.path }));

  return () => {
    alive = false;
    sched?.stop();
  };
}
