// A repaint loop with the latest request winning: `request(args)` asks for a frame; at most one
// render runs at a time, at most one starts per animation frame, and stale requests are dropped.
// No DOM here but the frame clock, which `nextFrame` replaces (the node tests, tests/js).
export function scheduler(render, nextFrame = (fn) => requestAnimationFrame(fn)) {
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
      if (wanted !== null) nextFrame(run);
    }
  }
  return {
    request(args) {
      wanted = args;
      nextFrame(run);
    },
    stop() {
      alive = false;
    },
  };
}
