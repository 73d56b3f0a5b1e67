// Unit tests of the live views' shared library (static/live) that need no DOM: the number helpers, the
// repaint loop and the shared code. Run by tests/services/test_live_views.py (node --test).
import assert from "node:assert/strict";
import { test } from "node:test";

import { all, clamp, dimLabel, fmt } from "../../static/live/dom.mjs";
import { scheduler } from "../../static/live/scheduler.mjs";

// code.mjs keeps its state on the page's window and speaks through DOM events (node 18 has no CustomEvent).
globalThis.window ??= globalThis;
globalThis.CustomEvent ??= class extends Event {
  constructor(type, init) {
    super(type);
    this.detail = init?.detail;
  }
};
const { announce, listen, shared } = await import("../../static/live/code.mjs");

test("fmt signs every value and rounds exact ties to even, as Python's +.2f", () => {
  assert.equal(fmt(0.5), "+0.50");
  assert.equal(fmt(-1.25), "−1.25");
  assert.equal(fmt(0), "+0.00");
  assert.equal(fmt(-0), "−0.00");
  assert.equal(fmt(-0.001), "−0.00");
  assert.equal(fmt(0.125), "+0.12"); // toFixed alone: +0.13
  assert.equal(fmt(-0.375), "−0.38");
  assert.equal(fmt(2.675), "+2.67"); // not a tie: 2.67499999... as a double
});

test("clamp keeps a value on its axis", () => {
  const axis = { lo: -4, hi: 4 };
  assert.deepEqual([-9, -4, 0.5, 4, 9].map((v) => clamp(v, axis)), [-4, -4, 0.5, 4, 4]);
});

test("dimLabel numbers dimensions from 1", () => {
  assert.deepEqual([0, 1, 31].map(dimLabel), ["z1", "z2", "z32"]);
});

// A frame clock the test advances by hand.
function clock() {
  const queue = [];
  return {
    next: (fn) => queue.push(fn),
    async tick() {
      const due = queue.splice(0);
      await Promise.all(due.map((fn) => fn()));
    },
  };
}

test("the scheduler renders the latest request once per frame and drops stale ones", async () => {
  const frames = clock();
  const seen = [];
  const s = scheduler(async (args) => seen.push(args), frames.next);
  s.request(1);
  s.request(2);
  s.request(3);
  assert.deepEqual(seen, []); // nothing before the frame
  await frames.tick();
  assert.deepEqual(seen, [3]);
  await frames.tick();
  assert.deepEqual(seen, [3]); // no request, no render
});

test("the scheduler runs one render at a time and then the latest request", async () => {
  const frames = clock();
  const seen = [];
  let finish;
  const s = scheduler(async (args) => {
    seen.push(args);
    if (args === "slow") await new Promise((resolve) => (finish = resolve));
  }, frames.next);
  s.request("slow");
  const slow = frames.tick();
  s.request("a");
  s.request("b");
  await frames.tick(); // a frame while the slow render runs: nothing starts
  assert.deepEqual(seen, ["slow"]);
  finish();
  await slow;
  await frames.tick(); // the frame the finished render asked for
  assert.deepEqual(seen, ["slow", "b"]);
});

test("a stopped scheduler renders nothing more", async () => {
  const frames = clock();
  const seen = [];
  const s = scheduler(async (args) => seen.push(args), frames.next);
  s.request(1);
  s.stop();
  await frames.tick();
  assert.deepEqual(seen, []);
});

test("views share one code per token and hear each other's changes, not their own", () => {
  const a = shared("t1", [1, 2]);
  assert.ok(a instanceof Float32Array);
  a[0] = 5;
  assert.equal(shared("t1", [0, 0]), a); // a re-mount picks the code up where it was left
  assert.deepEqual(Array.from(shared("t2", [0, 0])), [0, 0]); // a new token starts afresh
  const heard = [];
  const stopPad = listen("t1", "pad", () => heard.push("pad"));
  const stopSliders = listen("t1", "sliders", () => heard.push("sliders"));
  announce("t1", "sliders");
  announce("t2", "sliders"); // another token: nobody on t1 hears it
  assert.deepEqual(heard, ["pad"]);
  stopPad();
  announce("t1", "sliders");
  assert.deepEqual(heard, ["pad"]);
  stopSliders();
});

test("all calls each clean-up once, in order", () => {
  const calls = [];
  all(
    () => calls.push("frames"),
    () => calls.push("listener"),
  )();
  assert.deepEqual(calls, ["frames", "listener"]);
});
