// The 2-D latent pad: a plane of two chosen dimensions with a draggable point (mouse, touch or arrow
// keys), the other dimensions held at the sliders' current code. The image beside it is decoded in the
// browser on every move; Python hears the code only on release.
//
// data: services.live.LiveDecoder.data() and token, start (D,), x and y ({j, lo, hi, step}), size
// (plane and image pixels), caption (ui/sliders.py).

// Grid lines every quarter of each range, the axes through 0 where 0 is in range, the point.
function drawPlane(canvas, data, code) {
  const { x, y } = data;
  const ctx = canvas.getContext("2d");
  const w = canvas.width;
  const h = canvas.height;
  const px = (v) => ((v - x.lo) / (x.hi - x.lo)) * w;
  const py = (v) => (1 - (v - y.lo) / (y.hi - y.lo)) * h;
  ctx.fillStyle = "#11141c";
  ctx.fillRect(0, 0, w, h);
  ctx.strokeStyle = "rgba(250, 250, 250, 0.12)";
  ctx.lineWidth = 1;
  for (let k = 1; k < 4; k++) {
    ctx.beginPath();
    ctx.moveTo((k * w) / 4, 0);
    ctx.lineTo((k * w) / 4, h);
    ctx.moveTo(0, (k * h) / 4);
    ctx.lineTo(w, (k * h) / 4);
    ctx.stroke();
  }
  ctx.strokeStyle = "rgba(250, 250, 250, 0.4)";
  ctx.beginPath();
  if (x.lo < 0 && x.hi > 0) ctx.moveTo(px(0), 0), ctx.lineTo(px(0), h);
  if (y.lo < 0 && y.hi > 0) ctx.moveTo(0, py(0)), ctx.lineTo(w, py(0));
  ctx.stroke();
  ctx.fillStyle = "#ff4b4b";
  ctx.strokeStyle = "#fafafa";
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.arc(px(code[x.j]), py(code[y.j]), 7, 0, 2 * Math.PI);
  ctx.fill();
  ctx.stroke();
}

function layout({ el, fmt, dimLabel }, root, data) {
  const { x, y } = data;
  const [zx, zy] = [dimLabel(x.j), dimLabel(y.j)];
  const plane = el("canvas", { className: "plane", width: data.size, height: data.size, tabIndex: 0 });
  plane.setAttribute("aria-label", `Latent plane of ${zx} (across) and ${zy} (up); arrow keys move the point`);
  const image = el("canvas", { className: "image", width: data.size, height: data.size });
  const readout = el("output", { className: "readout" });
  const axes = el("div", {
    className: "axes",
    textContent: `across: ${zx} from ${fmt(x.lo)} to ${fmt(x.hi)} · up: ${zy} from ${fmt(y.lo)} to ${fmt(y.hi)}`,
  });
  const status = el("div", { className: "status", textContent: "Loading the decoder…" });
  root.replaceChildren(
    el("div", { className: "cell" }, [plane, readout, axes]),
    el("div", { className: "cell" }, [image, el("div", { className: "caption", textContent: data.caption }), status]),
  );
  return { plane, image, readout, status, zx, zy };
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  const root = parentElement.querySelector(".vae-latent_pad");
  const { x, y } = data;
  let stop = () => {};
  let alive = true;
  (async () => {
    // The URL made absolute: this script runs from a blob: URL.
    const live = await import(new URL(data.module_url, window.location.origin).href);
    const { fmt, clamp } = live;
    if (!alive) return;
    const code = live.shared(data.token, data.start);
    const { plane, image, readout, status, zx, zy } = layout(live, root, data);
    const frames = live.liveCanvas(data, image, status);
    const show = () => {
      drawPlane(plane, data, code);
      readout.value = `(${zx}, ${zy}) = (${fmt(code[x.j])}, ${fmt(code[y.j])})`;
      frames.request(code);
    };
    const moveTo = (vx, vy) => {
      code[x.j] = clamp(vx, x);
      code[y.j] = clamp(vy, y);
      show();
      live.announce(data.token, "pad");
    };
    const send = () => setTriggerValue("released", { z: Array.from(code), from: "pad" });
    const fromPointer = (e) => {
      const r = plane.getBoundingClientRect();
      moveTo(x.lo + ((e.clientX - r.left) / r.width) * (x.hi - x.lo), y.hi - ((e.clientY - r.top) / r.height) * (y.hi - y.lo));
    };
    let dragging = false;
    plane.addEventListener("pointerdown", (e) => {
      dragging = true;
      plane.setPointerCapture(e.pointerId);
      plane.focus();
      fromPointer(e);
    });
    plane.addEventListener("pointermove", (e) => dragging && fromPointer(e));
    const release = () => {
      if (!dragging) return;
      dragging = false;
      send();
    };
    plane.addEventListener("pointerup", release);
    plane.addEventListener("pointercancel", release);
    const keys = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
    plane.addEventListener("keydown", (e) => {
      if (!(e.key in keys)) return;
      e.preventDefault(); // not the page's scroll
      const [dx, dy] = keys[e.key];
      const k = e.shiftKey ? 10 : 1;
      moveTo(code[x.j] + dx * k * x.step, code[y.j] + dy * k * y.step);
    });
    plane.addEventListener("keyup", (e) => e.key in keys && send());
    const unlisten = live.listen(data.token, "pad", show);
    show();
    stop = live.all(frames.stop, unlisten);
  })();
  return () => {
    alive = false;
    stop();
  };
}
