"""How fast the app answers: slider to image, key press to repaint, start to a usable home page.

Prints figures with their targets (PASS / MISS); it is a benchmark, never a timed test.

(a) server side, the Latent sliders loop: ``model.decode`` of one (1, D) code plus the PNG the page sends
    (``vae.images.to_pil`` enlarged as the page does, then PNG-encoded as ``st.image`` does), and the
    page itself under Streamlit's AppTest (``at.slider(key="z_0").set_value(v).run()``; AppTest reruns the
    whole script, where the browser only reruns the sliders' fragment). Target: median < 50 ms.
(b) in a real browser (Playwright + Debian's /usr/bin/chromium, against a server this script starts):
    an arrow key on a focused slider until the decoded image's new source has loaded, timed inside the
    page with performance.now() (keydown listener -> requestAnimationFrame poll). Target: median < 200 ms.
(c) app start to a usable home page: from launching ``streamlit run app.py`` until the model card's
    metric is visible in the browser (a cold start: the first run imports torch). Target: < 5 s.
(d) the latent map figures of benchmarks/map_latency.py, when that script exists.

The model is the committed MNIST conv VAE (checkpoints/mnist-vae-conv.safetensors), else moons-vae;
``--model PATH.safetensors`` times any other checkpoint (the app then lists it as "trained here").

    .venv/bin/python benchmarks/app_latency.py
    .venv/bin/python benchmarks/app_latency.py --decodes 500 --presses 50 --model moons-vae
    .venv/bin/python benchmarks/app_latency.py --model runs/mnist-vae-conv.safetensors
    .venv/bin/python benchmarks/app_latency.py --no-browser --no-map     # (a) only
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
# This script times the server-side sliders (keys z_<j>); live decoding in the browser replaces them on
# the page, and benchmarks/live_decode.py times that. The servers and AppTests started here inherit it.
os.environ.setdefault("VAE_LIVE_DECODE", "0")

import torch  # noqa: E402

from vae.checkpoint import load_checkpoint  # noqa: E402
from vae.images import to_pil  # noqa: E402

PREFERRED = "mnist-vae-conv"
FALLBACK = "moons-vae"
SLIDER_PAGE = "pages/2_Latent_sliders.py"
DECODED_IMG = '[data-testid="stMain"] [data-testid="stImage"] img'
CONNECTED = '[data-testid="stApp"][data-test-connection-state="CONNECTED"]'

TARGET_SERVER_MS = 50.0
TARGET_BROWSER_MS = 200.0
TARGET_START_S = 5.0


# --------------------------------------------------------------------------- reporting


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def line(name: str, value: float, unit: str, target: float | None, extra: str = "") -> None:
    verdict = "" if target is None else ("PASS" if value < target else "MISS")
    tgt = "" if target is None else f"target < {target:g} {unit}"
    print(f"  {name:<58} {value:>8.1f} {unit:<3} {tgt:<18} {verdict:<4} {extra}".rstrip())


def stats(name: str, ms: list[float], target: float | None) -> None:
    line(
        f"{name} (median)",
        statistics.median(ms),
        "ms",
        target,
        f"p95 {pct(ms, 95):.1f} ms, min {min(ms):.1f}, n={len(ms)}",
    )


def background_load() -> str:
    """A note when training runs (vae.train) share the machine."""
    try:
        out = subprocess.run(["pgrep", "-af", "vae.train"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    procs = [ln for ln in out.splitlines() if ln.strip() and str(os.getpid()) != ln.split()[0] and "pgrep" not in ln]
    if not procs:
        return "no background training running"
    return f"NOTE: {len(procs)} background training run(s) (vae.train) share the CPU: figures are pessimistic"


def pick_model(model: str | None, trained_dir: Path) -> tuple[str, Path]:
    """(the label the app's model picker shows, the checkpoint path).

    ``model`` is a name in checkpoints/, or the path of a checkpoint elsewhere (say one still training in
    runs/): that one is copied into ``trained_dir``, which the app lists as "NAME (trained here)".
    """
    if model and Path(model).suffix == ".safetensors" and Path(model).is_file():
        src = Path(model)
        dst = trained_dir / src.name
        shutil.copyfile(src, dst)
        return f"{src.stem} (trained here)", dst
    for n in [model] if model else [PREFERRED, FALLBACK]:
        p = ROOT / "checkpoints" / f"{n}.safetensors"
        if p.exists():
            return n, p
    raise SystemExit(f"no checkpoint {model or PREFERRED + ' or ' + FALLBACK} in checkpoints/")


# --------------------------------------------------------------------------- (a) server side


def bench_decode(path: Path, n: int) -> None:
    """The page's decode + PNG with torch's default threads (as the app runs), then with one thread."""
    torch.set_grad_enabled(False)
    ckpt = load_checkpoint(path)
    model, cfg = ckpt.model, ckpt.config
    side = cfg.image_shape[1]
    scale = max(1, -(-320 // side))  # as the page shows it
    gen = torch.Generator().manual_seed(0)
    codes = (torch.rand(n + 10, 1, cfg.latent_dim, generator=gen) * 8 - 4).round(decimals=2)
    print(f"  {cfg.arch} {cfg.hidden} latent {cfg.latent_dim}, image {side}x{side} shown x{scale}")
    default = torch.get_num_threads()
    for threads in sorted({default, 1}, reverse=True):
        torch.set_num_threads(threads)
        total, dec, png = [], [], []
        for i, z in enumerate(codes):
            t0 = time.perf_counter()
            with torch.no_grad():
                x = model.decode(z.to(model.device))[0].cpu()
            t1 = time.perf_counter()
            buf = io.BytesIO()
            to_pil(x, scale=scale).save(buf, format="PNG")
            t2 = time.perf_counter()
            if i >= 10:  # warm-up
                dec.append((t1 - t0) * 1e3)
                png.append((t2 - t1) * 1e3)
                total.append((t2 - t0) * 1e3)
        what = "the app's default" if threads == default else "for comparison"
        print(f"  torch threads {threads} ({what}):")
        stats("decode + PNG (the page's code path)", total, TARGET_SERVER_MS)
        stats("  of which model.decode", dec, None)
        stats("  of which to_pil + PNG encoding", png, None)
    torch.set_num_threads(default)


def bench_apptest(model_name: str, runs: int) -> None:
    from streamlit.testing.v1 import AppTest

    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(logging.ERROR)

    os.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / SLIDER_PAGE), default_timeout=300)
    at.session_state["model_choice"] = model_name
    t0 = time.perf_counter()
    at.run()
    first = time.perf_counter() - t0
    if at.exception:
        print(f"  AppTest: the page raised: {at.exception[0].value}")
        return
    slider = at.slider(key="z_0")
    lo, hi = slider.min, slider.max
    values = [round((lo + (hi - lo) * ((i * 7) % 23) / 22) * 20) / 20 for i in range(runs + 3)]
    ms = []
    for i, v in enumerate(values):
        t0 = time.perf_counter()
        at.slider(key="z_0").set_value(v).run()
        if i >= 3:
            ms.append((time.perf_counter() - t0) * 1e3)
        if at.exception:
            print(f"  AppTest: the page raised: {at.exception[0].value}")
            return
    print(f"  AppTest first run (imports, checkpoint, KL per dimension): {first:.1f} s")
    stats("AppTest slider z_0 set_value().run() (whole page)", ms, TARGET_SERVER_MS)


# --------------------------------------------------------------------------- (b), (c) browser

# Installed in the page before each key press: times keydown -> the decoded image's new source loaded,
# polled once per animation frame (so the figure includes the repaint, at frame resolution). It also
# notes when the new source appeared in the DOM (the rerun's delta arrived) and, from the resource
# timing of the PNG, how long its download took.
ARM = """sel => {
    window.__lat = null;
    performance.clearResourceTimings();
    const old = document.querySelector(sel).src;
    const onkey = e => {
        if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
        document.removeEventListener('keydown', onkey, true);
        const t0 = performance.now();
        let tSrc = null;
        const tick = () => {
            const el = document.querySelector(sel);
            if (el && el.src && el.src !== old) {
                if (tSrc === null) tSrc = performance.now() - t0;
                if (el.complete && el.naturalWidth > 0) {
                    const r = performance.getEntriesByName(el.src)[0];
                    window.__lat = {total: performance.now() - t0, src: tSrc,
                                    fetch: r ? r.responseEnd - r.startTime : null};
                    return;
                }
            }
            requestAnimationFrame(tick);
        };
        requestAnimationFrame(tick);
    };
    document.addEventListener('keydown', onkey, true);
}"""


def select_model(page, name: str) -> None:
    """Pick a model in the sidebar's picker (a react-aria combobox) and wait for the page's rerun."""
    from st_browser import wait_idle

    combo = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"] input[role="combobox"]').first
    if combo.input_value() == name:
        return
    combo.click()
    page.get_by_role("option", name=name, exact=True).click()
    page.wait_for_function(
        """n => document.querySelector('[data-testid="stSidebar"] [data-testid="stSelectbox"] input').value === n""",
        arg=name,
    )
    wait_idle(page)


def bench_browser(model_name: str, presses: int, start_runs: int, trained_dir: Path) -> None:
    from playwright.sync_api import sync_playwright
    from st_browser import VIEWPORT, Server, focus_slider, launch, missing_browser, open_page, wait_idle

    why = missing_browser()
    if why:
        print(f"  skipped: {why}")
        return
    with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        browser = launch(p)
        server = None
        try:
            # (c) cold start: process launch -> health -> first page -> model card metric visible.
            starts = []
            for r in range(start_runs):
                if server is not None:
                    server.stop()
                ctx = browser.new_context(viewport=VIEWPORT)
                page = ctx.new_page()
                server = Server(trained_dir, logs / f"streamlit-{r}.log")
                healthy = server.wait_healthy()
                page.goto(server.url + "/", wait_until="domcontentloaded", timeout=180_000)
                page.wait_for_selector(CONNECTED, state="attached", timeout=180_000)
                connected = time.perf_counter() - server.started
                page.locator('[data-testid="stMetric"]').filter(has_text="Latent size").first.wait_for(timeout=180_000)
                usable = time.perf_counter() - server.started
                starts.append((healthy, connected, usable))
                ctx.close()
            ctx = browser.new_context(viewport=VIEWPORT)
            page = ctx.new_page()
            t0 = time.perf_counter()
            page.goto(server.url + "/", wait_until="domcontentloaded", timeout=180_000)
            page.locator('[data-testid="stMetric"]').filter(has_text="Latent size").first.wait_for(timeout=180_000)
            warm = time.perf_counter() - t0
            for healthy, connected, usable in starts:
                line(
                    "(c) app start -> model card visible (cold)",
                    usable,
                    "s",
                    TARGET_START_S,
                    f"health ok {healthy:.1f} s, page connected {connected:.1f} s, then the first script run",
                )
            line("    a second session loading the home page (warm)", warm, "s", TARGET_START_S)

            # (b) key press -> repainted image on the Latent sliders page.
            open_page(page, server.url, "/Latent_sliders")
            select_model(page, model_name)
            page.locator(DECODED_IMG).first.wait_for()
            in_page, outside, to_src, fetch = [], [], [], []
            for i in range(presses + 2):
                key = "ArrowRight" if (i // 5) % 2 == 0 else "ArrowLeft"  # wander 5 steps right, 5 left
                focus_slider(page, index=0)
                page.evaluate(ARM, DECODED_IMG)
                t0 = time.perf_counter()
                page.keyboard.press(key)
                page.wait_for_function("() => window.__lat !== null", timeout=60_000, polling=5)
                t1 = time.perf_counter()
                lat = page.evaluate("window.__lat")
                wait_idle(page)
                if i >= 2:  # warm-up
                    in_page.append(lat["total"])
                    to_src.append(lat["src"])
                    if lat["fetch"] is not None:
                        fetch.append(lat["fetch"])
                    outside.append((t1 - t0) * 1e3)
            shown = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"] input').first.input_value()
            print(f"  browser: Chromium {browser.version}, model {shown}")
            stats("(b) key press -> repainted image (in page)", in_page, TARGET_BROWSER_MS)
            stats("    key press -> new image URL in the page (rerun + delta)", to_src, None)
            if fetch:
                stats("    download of the new PNG (resource timing)", fetch, None)
            stats("    the same total, timed from Python (CDP round trips)", outside, None)
            ctx.close()
        finally:
            if server is not None:
                server.stop()
            browser.close()


# --------------------------------------------------------------------------- (d) the latent map


def bench_map() -> None:
    script = ROOT / "benchmarks" / "map_latency.py"
    if not script.exists():
        print("  skipped: benchmarks/map_latency.py does not exist")
        return
    r = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    out = (r.stdout + (r.stderr if r.returncode else "")).rstrip()
    print("\n".join("  " + ln for ln in out.splitlines()))
    if r.returncode:
        print(f"  map_latency.py exited with {r.returncode}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--model",
        help=f"a checkpoint name in checkpoints/ (default {PREFERRED}, else {FALLBACK}), or a .safetensors path",
    )
    ap.add_argument("--decodes", type=int, default=200, help="decodes timed in (a) (default 200)")
    ap.add_argument("--apptest-runs", type=int, default=30, help="AppTest slider runs timed in (a) (default 30)")
    ap.add_argument("--presses", type=int, default=30, help="key presses timed in (b) (default 30)")
    ap.add_argument("--start-runs", type=int, default=1, help="cold starts timed in (c) (default 1)")
    ap.add_argument(
        "--server-threads", type=int, help="OMP_NUM_THREADS for the app server in (b, c) (default: torch's own)"
    )
    ap.add_argument("--no-browser", action="store_true", help="skip (b) and (c)")
    ap.add_argument("--no-map", action="store_true", help="skip (d)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as trained:
        trained_dir = Path(trained)
        os.environ["VAE_TRAINED_DIR"] = trained  # the app (AppTest here, the server below) lists it
        name, path = pick_model(args.model, trained_dir)
        print(
            f"App latency · model {name} · torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs"
        )
        note = background_load()
        if note:
            print(note)
        print("(a) server side: slider -> image")
        bench_decode(path, args.decodes)
        bench_apptest(name, args.apptest_runs)
        if not args.no_browser:
            if args.server_threads:
                os.environ["OMP_NUM_THREADS"] = str(args.server_threads)  # the server inherits it
            threads = args.server_threads or "torch's default"
            print(f"(b, c) in a real browser (server threads: {threads})")
            bench_browser(name, args.presses, args.start_runs, trained_dir)
    if not args.no_map:
        print("(d) latent map")
        bench_map()
    note = background_load()
    if note:
        print(f"at the end: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
