"""Live decoding in the browser against the server-side sliders it replaces (the peer), on Latent sliders.

For each model (moons-vae, an MLP decoder; mnist-vae-conv, a conv decoder), in Debian's Chromium driven by
Playwright against two servers this script starts, one as the app runs (live) and one with
VAE_LIVE_DECODE=0 (today's server-side sliders), each measured the same way:

(a) a 1-second mouse drag of the first slider, sampled at 20 steps: at how many steps the picture had
    changed since the step before (target >= 10 of 20; the peer's image waits for the release);
(b) decode + paint per frame during the drag, from ``window.__vaeLive.frames`` (targets p50 <= 4 ms for
    an MLP, <= 16 ms for a conv decoder, p95 <= 33 ms), and key press -> repainted picture for both sides
    (timed in the page: keydown, then one check per animation frame);
(c) websocket frames the browser sent to the server during the drag, before the release (a rerun request
    is one; target 0);
(d) opening Latent sliders from the sidebar (the app warm: the server has served the home page, with that
    model picked) until a slider is usable: the first decoded picture painted (target <= 2 s). The first
    open after the server started includes loading the data set and measuring each dimension's KL;
    a second open in a new browser session finds them cached.

It prints figures with their targets (PASS / MISS) and ratios against the peer; it never fails.

    .venv/bin/python benchmarks/live_decode.py
    .venv/bin/python benchmarks/live_decode.py --models moons-vae --presses 10
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from common import cpu_cores, cpu_name  # noqa: E402  (beside this file)

MODELS = ("moons-vae", "mnist-vae-conv")
FRAME_P50 = {"mlp": 4.0, "conv": 16.0}
FRAME_P95 = 33.0
CHANGES = 10
USABLE_S = 2.0
DECODED_IMG = '[data-testid="stMain"] [data-testid="stImage"] img'  # the peer's decoded image comes first
PICKER = '[data-testid="stSidebar"] [data-testid="stSelectbox"] input[role="combobox"]'

# Installed before a key press: keydown -> the picture repainted (the live canvas painted one more frame,
# or the peer's <img> has a new, loaded source), checked once per animation frame.
ARM = """([live, sel]) => {
    window.__lat = null;
    const find = () => live ? document.querySelector('[data-testid="stBidiComponentIsolated"]')
        .shadowRoot.querySelector('canvas') : document.querySelector(sel);
    const before = live ? find().dataset.painted : find().src;
    const onkey = () => {
        document.removeEventListener('keydown', onkey, true);
        const t0 = performance.now();
        const tick = () => {
            const el = find();
            const done = live ? el.dataset.painted !== before
                : el.src !== before && el.complete && el.naturalWidth > 0;
            if (done) { window.__lat = performance.now() - t0; return; }
            requestAnimationFrame(tick);
        };
        requestAnimationFrame(tick);
    };
    document.addEventListener('keydown', onkey, true);
}"""


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def line(name: str, value: float, unit: str, target: str = "", ok: bool | None = None, extra: str = "") -> None:
    verdict = "" if ok is None else ("PASS" if ok else "MISS")
    print(f"  {name:<50} {value:>8.1f} {unit:<5} {target:<16} {verdict:<4} {extra}".rstrip())


def select_model(page, name: str) -> None:
    """Pick a model in the sidebar's picker and wait for the rerun."""
    from st_browser import wait_idle

    combo = page.locator(PICKER).first
    if combo.input_value() != name:
        combo.click()
        page.get_by_role("option", name=name, exact=True).click()
        page.wait_for_function("([s, n]) => document.querySelector(s).value === n", arg=[PICKER, name])
    wait_idle(page)


def open_sliders(page, live: bool) -> tuple[float, float]:
    """Click "Latent sliders" in the sidebar; seconds until the first decoded picture is shown, and
    until the sliders were drawn (the live view's range inputs; the peer: the same moment)."""
    from st_live import SLIDERS, SLIDERS_CANVAS, wait_painted

    t0 = time.perf_counter()
    page.locator('[data-testid="stSidebarNav"] a', has_text="Latent sliders").click()
    if live:
        page.locator(f"{SLIDERS} input[type=range]").first.wait_for(timeout=180_000)
        drawn = time.perf_counter() - t0
        wait_painted(page, SLIDERS_CANVAS, timeout=180_000)
        return time.perf_counter() - t0, drawn
    else:
        page.wait_for_function(  # the sliders' own image: the home page just left has images too
            """() => [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stImage"]')].some(f =>
                f.textContent.includes('decoded mean') && f.querySelector('img')?.complete
                && f.querySelector('img').naturalWidth > 0)""",
            timeout=180_000,
        )
    done = time.perf_counter() - t0
    return done, done


def session(browser, server, model: str, live: bool):
    """A new browser session on the home page with ``model`` picked; returns (context, page, counter)."""
    from st_browser import VIEWPORT, open_page
    from st_live import SentCounter

    ctx = browser.new_context(viewport=VIEWPORT)
    page = ctx.new_page()
    sent = SentCounter(page)
    open_page(page, server.url, "/")
    select_model(page, model)
    return ctx, page, sent


def drag_first_slider(page, live: bool, sent):
    """The 1-second drag of (a) and (c): from the first slider's thumb to 80% of its track."""
    from st_live import SLIDERS, SLIDERS_CANVAS, drag, thumb_at

    if live:
        inp = f"{SLIDERS} input[type=range]"
        lo, hi = (float(page.locator(inp).first.get_attribute(a)) for a in ("min", "max"))
        start = thumb_at(page, inp, 0.0 if lo < 0 < hi else (lo + hi) / 2, lo, hi)
        end = (thumb_at(page, inp, lo + 0.8 * (hi - lo), lo, hi)[0], start[1])
        return drag(page, start, end, SLIDERS_CANVAS, sent=sent)
    slider = page.locator('[data-testid="stMain"] [data-testid="stSlider"]').first
    value = slider.locator('[data-testid="stSliderThumbValue"]').bounding_box()  # drawn just above the thumb
    track = slider.locator('[role="group"]').first.bounding_box()
    start = (value["x"] + value["width"] / 2, value["y"] + value["height"] + 6)
    end = (track["x"] + 0.8 * track["width"], start[1])
    src = lambda: page.locator(DECODED_IMG).first.get_attribute("src")  # noqa: E731
    return drag(page, start, end, DECODED_IMG, sent=sent, image=src)


def key_presses(page, live: bool, n: int) -> list[float]:
    """Key press -> repainted picture (ms), ``n`` times on the first slider (5 right, 5 left, ...)."""
    from st_browser import focus_slider, wait_idle
    from st_live import SLIDERS

    out = []
    for i in range(n + 2):
        if live:
            page.locator(f"{SLIDERS} input[type=range]").first.focus()
        else:
            focus_slider(page, index=0)
        page.evaluate(ARM, [live, DECODED_IMG])
        page.keyboard.press("ArrowRight" if (i // 5) % 2 == 0 else "ArrowLeft")
        page.wait_for_function("() => window.__lat !== null", timeout=60_000, polling=5)
        if i >= 2:  # warm-up
            out.append(page.evaluate("window.__lat"))
        wait_idle(page)
    return out


def measure(browser, server, model: str, live: bool, presses: int) -> dict:
    from st_browser import wait_idle
    from st_live import clear_frame_times, frame_times

    ctx, page, sent = session(browser, server, model, live)
    first = open_sliders(page, live)
    wait_idle(page)
    clear_frame_times(page)
    seen = drag_first_slider(page, live, sent)
    frames = frame_times(page)
    wait_idle(page)
    keys = key_presses(page, live, presses)
    ctx.close()
    ctx, page, _ = session(browser, server, model, live)
    second = open_sliders(page, live)
    ctx.close()
    return {"first": first, "second": second, "drag": seen, "frames": frames, "keys": keys}


def report(model: str, arch: str, live: dict, peer: dict) -> None:
    d, p = live["drag"], peer["drag"]
    print(f"{model} ({arch} decoder)")
    line(
        "(a) picture changed during a 1 s drag (of 20)",
        d.changes,
        "steps",
        f">= {CHANGES}",
        d.changes >= CHANGES,
        f"peer (server-side slider): {p.changes} of 20; drag took {d.seconds:.2f} s",
    )
    if live["frames"]:
        f = live["frames"]
        p50, p95 = statistics.median(f), pct(f, 95)
        line(
            "(b) decode + paint per frame (p50)",
            p50,
            "ms",
            f"<= {FRAME_P50[arch]:g} ms",
            p50 <= FRAME_P50[arch],
            f"n={len(f)} frames during the drag",
        )
        line("    decode + paint per frame (p95)", p95, "ms", f"<= {FRAME_P95:g} ms", p95 <= FRAME_P95)
    else:
        print("  (b) no frame timings recorded: the live view did not paint during the drag")
    lk, pk = statistics.median(live["keys"]), statistics.median(peer["keys"])
    line(
        "    key press -> repainted picture (median)",
        lk,
        "ms",
        "",
        None,
        f"peer {pk:.1f} ms (a server rerun): {pk / max(lk, 1e-3):.0f}x faster; p95 {pct(live['keys'], 95):.1f} "
        f"vs {pct(peer['keys'], 95):.1f} ms",
    )
    line(
        "(c) frames sent to the server during the drag",
        d.sent_before_release,
        "",
        "0",
        d.sent_before_release == 0,
        f"peer {p.sent_before_release}",
    )
    for k, name in (
        ("first", "(d) open Latent sliders -> first picture (first)"),
        ("second", "    ... again, in a new browser session"),
    ):
        (t, drawn), (tp, _) = live[k], peer[k]
        line(
            name,
            t,
            "s",
            f"<= {USABLE_S:g} s",
            t <= USABLE_S,
            f"sliders drawn at {drawn:.2f} s, then the decoder loads; peer {tp:.2f} s ({t / tp:.1f}x)",
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), help=f"checkpoint names (default {' '.join(MODELS)})")
    ap.add_argument("--presses", type=int, default=20, help="key presses timed per model and side (default 20)")
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright
    from st_browser import Server, launch, missing_browser

    from vae.meta import read_metadata

    why = missing_browser()
    if why:
        print(f"skipped: {why}")
        return 0
    models = [m for m in args.models if (ROOT / "checkpoints" / f"{m}.safetensors").exists()]
    print(f"Live decoding on Latent sliders · {cpu_name()}, {cpu_cores()} cores")
    with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        browser = launch(p)
        print(f"Chromium {browser.version}; peer: the same page with VAE_LIVE_DECODE=0 (server-side sliders)")
        servers = {}
        try:
            for live in (True, False):
                os.environ["VAE_LIVE_DECODE"] = "1" if live else "0"  # the server inherits it
                servers[live] = Server(Path(tmp), Path(tmp) / f"streamlit-{live}.log")
                servers[live].wait_healthy()
            for model in models:
                arch = read_metadata(ROOT / "checkpoints" / f"{model}.safetensors")["config"]["arch"]
                got = {live: measure(browser, servers[live], model, live, args.presses) for live in (True, False)}
                report(model, "conv" if arch == "conv" else "mlp", got[True], got[False])
        finally:
            for s in servers.values():
                s.stop()
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
