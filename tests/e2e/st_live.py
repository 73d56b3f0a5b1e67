"""Helpers for the live views, shared by the browser tests and benchmarks/live_decode.py: find their
canvases (in each component's open shadow root, which
Playwright's CSS locators pierce), sample the picture during a mouse drag, count what the browser
sends to the server, read the frame timings the page records (window.__vaeLive.frames).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

SLIDERS = ".vae-latent_sliders"
MAP = ".vae-latent_map"
PAD = ".vae-latent_pad"
SLIDERS_CANVAS = f"{SLIDERS} canvas"
PAD_PLANE = f"{PAD} canvas.plane"
PAD_IMAGE = f"{PAD} canvas.image"

# Two animation frames: a request made by the last input event has been decoded and painted
# (decoding takes well under a frame; a slower one is simply sampled at the next step).
NEXT_FRAMES = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))"


def painted(page, selector: str) -> int:
    """How many frames the canvas at ``selector`` has painted (0 until the decoder has loaded)."""
    return int(page.locator(selector).first.get_attribute("data-painted") or 0)


def wait_painted(page, selector: str, more_than: int = 0, timeout: int = 60_000) -> int:
    """Until the canvas at ``selector`` has painted more than ``more_than`` frames; returns the count."""
    handle = page.locator(selector).first.element_handle(timeout=timeout)
    page.wait_for_function("([c, n]) => Number(c.dataset.painted) > n", arg=[handle, more_than], timeout=timeout)
    return painted(page, selector)


def picture(page, selector: str) -> str:
    """The canvas's picture as a data URL (equal URLs: the same pixels)."""
    return page.locator(selector).first.evaluate("c => c.toDataURL()")


def pixels(page, selector: str, height: int, width: int) -> list[list[int]]:
    """The red channel (0-255) at the centre of each of the height x width model pixels on the canvas."""
    return page.locator(selector).first.evaluate(
        """(c, [h, w]) => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            const sy = c.height / h, sx = c.width / w;
            return Array.from({length: h}, (_, r) => Array.from({length: w}, (_, k) =>
                d[4 * (Math.floor((r + 0.5) * sy) * c.width + Math.floor((k + 0.5) * sx))]));
        }""",
        [height, width],
    )


class SentCounter:
    """Counts websocket frames the browser sends to the Streamlit server (a rerun request is one);
    attach before the page is opened."""

    def __init__(self, page) -> None:
        self.count = 0
        page.on("websocket", lambda ws: ws.on("framesent", self._sent))

    def _sent(self, _payload) -> None:
        self.count += 1


@dataclass
class Drag:
    """What a paced mouse drag saw: whether the picture changed at each sampled step, and the frames
    the browser sent to the server before the button was released."""

    changed: list[bool] = field(default_factory=list)
    sent_before_release: int = 0
    seconds: float = 0.0

    @property
    def changes(self) -> int:
        return sum(self.changed)


def drag(
    page,
    start: tuple[float, float],
    end: tuple[float, float],
    canvas: str,
    steps: int = 20,
    duration_s: float = 1.0,
    sent: SentCounter | None = None,
    image=None,
) -> Drag:
    """Press at ``start``, move to ``end`` in ``steps`` equal moves spread over ``duration_s`` seconds,
    sampling the picture after each move (``image()`` if given, e.g. a server-side <img> src, else the
    canvas), then release."""
    sample = image or (lambda: picture(page, canvas))
    out = Drag()
    page.mouse.move(*start)
    page.mouse.down()
    before = sent.count if sent else 0
    last = sample()
    t0 = time.perf_counter()
    for k in range(1, steps + 1):
        f = k / steps
        page.mouse.move(start[0] + f * (end[0] - start[0]), start[1] + f * (end[1] - start[1]))
        wait = t0 + f * duration_s - time.perf_counter()
        if wait > 0:
            page.wait_for_timeout(wait * 1000)
        page.evaluate(NEXT_FRAMES)
        now = sample()
        out.changed.append(now != last)
        last = now
    out.seconds = time.perf_counter() - t0
    out.sent_before_release = (sent.count - before) if sent else 0
    page.mouse.up()
    return out


def thumb_at(page, selector: str, value: float, lo: float, hi: float) -> tuple[float, float]:
    """Where a native range input at ``selector`` draws its thumb for ``value`` (Chromium's thumb is
    about 16 px wide, its centre runs from 8 px in from each end)."""
    box = page.locator(selector).first.bounding_box()
    f = (value - lo) / (hi - lo)
    return box["x"] + 8 + f * (box["width"] - 16), box["y"] + box["height"] / 2


def frame_times(page) -> list[float]:
    """Decode + paint times (ms) the live views recorded, oldest first."""
    return page.evaluate("() => (window.__vaeLive && window.__vaeLive.frames) || []")


def clear_frame_times(page) -> None:
    page.evaluate("() => { if (window.__vaeLive) window.__vaeLive.frames = []; }")


def isolated_point(page, n: int = 300) -> dict | None:
    """The live map's point (of its first ``n``) farthest from the others, in page pixels, so that the
    mouse over it hovers (or clicks) it and nothing else: {i, x, y, inside, gap}."""
    return page.locator(MAP).evaluate(
        """(r, n) => {
            const pts = [];
            for (let i = 0; i < n; i++) pts.push({i, ...r.__map.client(i)});
            let best = null, gap = -1;
            for (const p of pts) {
                if (!p.inside) continue;
                let d = Infinity;
                for (const q of pts) if (q !== p) d = Math.min(d, Math.hypot(p.x - q.x, p.y - q.y));
                if (d > gap) { gap = d; best = p; }
            }
            return best && {...best, gap};
        }""",
        n,
    )
