// Latent sliders, live: one range input per dimension and the decoded image beside them, kept in view.
// The image is decoded in the browser on every input event (one decode per animation frame); Python
// hears the code only on release (the input's change event: mouse up, or each arrow key).
//
// data: services.live.LiveDecoder.data() and token, start (D,), dims and folded ([{j, label, lo, hi,
// step}, plus mu, sigma and band (its text) when the sliders start from an encoded image of a VAE], most
// informative first), fold_note, size (canvas pixels), caption (ui/sliders.py).

// One labelled range input; its output shows the exact value (the thumb snaps to the step).
function row({ el, fmt, clamp }, d, value) {
  const input = el("input", { type: "range", min: d.lo, max: d.hi, step: d.step, value });
  input.dataset.dim = d.j;
  input.setAttribute("aria-label", d.label);
  const out = el("output", { value: fmt(value) });
  const label = el("label", { className: "label" }, [el("span", { textContent: d.label }), out]);
  if (d.sigma === undefined) return { input, out, node: el("div", { className: "row" }, [label, input]) };
  // q(z_j|x) = N(mu, sigma^2): a shaded band from mu - sigma to mu + sigma behind the track, a tick at mu.
  const at = (v) => (100 * (clamp(v, d) - d.lo)) / (d.hi - d.lo);
  const band = el("span", { className: "band", title: d.band });
  band.style.left = `${at(d.mu - d.sigma)}%`;
  band.style.width = `${at(d.mu + d.sigma) - at(d.mu - d.sigma)}%`;
  const tick = el("span", { className: "tick" });
  tick.style.left = `${at(d.mu)}%`;
  const track = el("div", { className: "track" }, [el("div", { className: "posterior" }, [band, tick]), input]);
  label.firstChild.append(el("span", { className: "q", textContent: `  ${d.band}` }));
  return { input, out, node: el("div", { className: "row" }, [label, track]) };
}

function layout(live, root, data, code) {
  const { el } = live;
  const rows = {};
  const list = el("div", { className: "sliders" });
  for (const d of data.dims) list.append((rows[d.j] = row(live, d, code[d.j])).node);
  if (data.folded.length) {
    const fold = el("details", {}, [el("summary", { textContent: data.fold_note })]);
    for (const d of data.folded) fold.append((rows[d.j] = row(live, d, code[d.j])).node);
    list.append(fold);
  }
  const canvas = el("canvas", { width: data.size, height: data.size });
  const status = el("div", { className: "status", textContent: "Loading the decoder…" });
  const view = el("div", { className: "view" }, [canvas, el("div", { className: "caption", textContent: data.caption }), status]);
  root.replaceChildren(list, view);
  return { rows, canvas, status };
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  const root = parentElement.querySelector(".vae-latent_sliders");
  let stop = () => {};
  let alive = true;
  (async () => {
    // The URL made absolute: this script runs from a blob: URL.
    const live = await import(new URL(data.module_url, window.location.origin).href);
    if (!alive) return;
    const code = live.shared(data.token, data.start);
    const { rows, canvas, status } = layout(live, root, data, code);
    const frames = live.liveCanvas(data, canvas, status, (reason) => setTriggerValue("failed", reason));
    const send = () => setTriggerValue("released", { z: Array.from(code), from: "sliders" });
    for (const { input, out } of Object.values(rows)) {
      input.addEventListener("input", () => {
        code[input.dataset.dim] = Number(input.value);
        out.value = live.fmt(code[input.dataset.dim]);
        frames.request(code);
        live.announce(data.token, "sliders");
      });
      input.addEventListener("change", send); // mouse released, or a key changed the value
    }
    const unlisten = live.listen(data.token, "sliders", () => {
      for (const [j, r] of Object.entries(rows)) {
        r.input.value = code[j];
        r.out.value = live.fmt(code[j]);
      }
      frames.request(code);
    });
    frames.request(code);
    stop = live.all(frames.stop, unlisten);
  })();
  return () => {
    alive = false;
    stop();
  };
}
