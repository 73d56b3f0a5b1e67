// The Interpolate page's scrubber: drag t along the path from A to B and each model's decoder paints
// the code at t in the browser, on every input event. Python hears t on release only (state "t", tagged
// with the path it was chosen on, so a t left from another path is ignored).
//
// data (services.live_views.scrub_payload): method ("linear" | "slerp"), path (a digest), and per
// model: title, decoder (services.live.LiveDecoder.data()), za and zb (D,).

const STEPS = 1000; // positions of the range input: finer than any pixel of its track
const SIZE = 168; // CSS pixels of each picture: 6 per pixel of a 28x28 image

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

function layout({ el }, root, data) {
  const pictures = data.models.map((m) => {
    const [, h, w] = m.decoder.shape;
    const scale = Math.max(1, Math.round(SIZE / w));
    const canvas = el("canvas", { width: w * scale, height: h * scale });
    canvas.style.width = `${w * scale}px`;
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
  let stop = () => {};
  let alive = true;
  (async () => {
    // The URL made absolute: this script runs from a blob: URL.
    const live = await import(new URL(data.models[0].decoder.module_url, window.location.origin).href);
    if (!alive) return;
    const { canvases, input, readout, status } = layout(live, root, data);
    const tNow = () => Number(input.value) / STEPS;
    const views = data.models.map((m, k) => ({
      data: m.decoder,
      canvas: canvases[k],
      code: (t) => pathAt(m.za, m.zb, t, data.method),
    }));
    const frames = live.livePictures(views, status, {
      ready: () => {
        root.dataset.ready = "1";
      },
      failed: (reason) => {
        root.dataset.error = reason;
        return `Live decoding failed in this browser (${reason}); the rows below are decoded on the server.`;
      },
      painted: (t) => {
        root.dataset.t = String(t); // what the pictures show now (for the browser tests)
      },
    });
    const show = () => {
      readout.textContent = `t = ${tNow().toFixed(3)} · ${data.method} path`;
      frames.request(tNow());
    };
    input.addEventListener("input", show);
    // "change" comes on release (and after each key press): the one moment Python needs to hear of it.
    input.addEventListener("change", () => setStateValue("t", { t: tNow(), path: data.path }));
    show();
    stop = () => frames.stop();
  })().catch((e) => {
    root.dataset.error = String(e.message || e);
    root.textContent = `Live decoding failed in this browser (${root.dataset.error}).`;
  });
  return () => {
    alive = false;
    stop();
  };
}
