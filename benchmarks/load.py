"""Load: N concurrent sessions moving sliders and uploading images against one Python process.

Each session is a thread with two Streamlit AppTest instances (the Latent sliders page and the Reconstruct
page). AppTest runs the page script in this process, so N sessions load one process's Python and torch as N
browser tabs load one ``streamlit run`` server (without the websocket and the browser). A session alternates:
a slider move (``z_0`` set to a new random value, then a run) and, every ``--upload-every`` requests, an upload
of a generated moon PNG (a disk at a random place and size, so the page's score cache does not hide the work)
to the Reconstruct page. Each AppTest is warmed up with one run before timing; each thread stops by itself at
a shared stop time and is joined with a timeout.

AppTest is not thread-safe as shipped: each run installs its own mock ``Runtime`` as a global and removes it when
it ends (another session's script then fails with "Runtime hasn't been created!"), and patches
``config.get_option`` around the run. ``share_one_runtime()`` installs one mock runtime (one media file manager,
one cache storage manager) and the AppTest config patch once, for the whole process, as one real server has one
``Runtime``. Only the test harness is changed; the pages run as they are.

For each N it prints the requests served (script runs completed), errors (exceptions in ``at.exception``,
``at.error`` elements, a missing result, or a Python exception in the thread), the median and p95 latency per
request, and memory: the process's peak RSS (VmHWM) and the growth of VmRSS during the run. PASS when there
are no errors. It is a benchmark, not a test: it never fails the shell, it reports.

    .venv/bin/python benchmarks/load.py
    .venv/bin/python benchmarks/load.py --seconds 10 --sessions 1,4
    .venv/bin/python benchmarks/load.py --model mnist-vae-conv --sessions 1,4,16

``--browser`` measures page opens instead, as a user waits for them: one ``streamlit run app.py`` server and N
real browser sessions (one headless Chromium, a context each: Debian's /usr/bin/chromium through Playwright,
as the browser tests) walking every page at once, each starting at another page. A page open is from
``goto`` until the page's script run has finished (no skeleton, no spinner) and its title shows; the first
walk warms the server's caches and is reported on its own line.

    .venv/bin/python benchmarks/load.py --browser --sessions 1,4 --seconds 60
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import statistics
import sys
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# This script times the server-side sliders (keys z_<j>); live decoding in the browser replaces them on
# the page, and benchmarks/live_decode.py times that. The servers and AppTests started here inherit it.
LIVE_DEFAULTED = "VAE_LIVE_DECODE" not in os.environ  # --browser serves the app as users get it: live decoding on
os.environ.setdefault("VAE_LIVE_DECODE", "0")

import contextlib  # noqa: E402
import logging  # noqa: E402

from PIL import Image, ImageDraw  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

SLIDERS = str(ROOT / "pages" / "2_Latent_sliders.py")
RECONSTRUCT = str(ROOT / "pages" / "5_Reconstruct.py")
MODEL_KEY = "model_choice"  # ui.common.MODEL_KEY (not imported: that would set torch's threads before the app)
TIMEOUT_S = 300.0


def share_one_runtime() -> None:
    """One mock Runtime and one config patch for every AppTest in the process (see the module docstring)."""
    from unittest.mock import MagicMock

    from streamlit import config
    from streamlit.components.v2.component_manager import BidiComponentManager
    from streamlit.runtime import Runtime
    from streamlit.runtime.caching.storage.dummy_cache_storage import MemoryCacheStorageManager
    from streamlit.runtime.dataframe_source_manager import DataframeSourceManager
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.testing.v1 import app_test
    from streamlit.testing.v1.util import build_mock_config_get_option

    rt = MagicMock(spec=Runtime)
    rt.media_file_mgr = MediaFileManager(MemoryMediaFileStorage("/mock/media"))
    rt.dataframe_source_mgr = DataframeSourceManager()
    rt.cache_storage_manager = MemoryCacheStorageManager()
    bidi = BidiComponentManager()
    bidi.discover_and_register_components(start_file_watching=False)
    rt.bidi_component_registry = bidi
    Runtime.instance = classmethod(lambda cls: rt)
    Runtime.exists = classmethod(lambda cls: True)
    config.get_option = build_mock_config_get_option({"global.appTest": True})
    app_test.patch_config_options = lambda overrides: contextlib.nullcontext()
    # Setting at.session_state from a session thread (outside a script run) warns once per key: noise here.
    noisy = logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context")
    noisy.addFilter(lambda rec: "missing ScriptRunContext" not in rec.getMessage())


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def proc_status(field: str) -> float:
    """A field of /proc/self/status in MiB (VmRSS, VmHWM); ru_maxrss where /proc is missing."""
    try:
        for ln in Path("/proc/self/status").read_text().splitlines():
            if ln.startswith(field + ":"):
                return int(ln.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def moon(rng: random.Random) -> bytes:
    """A white disk on black like tests/vae_helpers.moon_png(), at a random place and size."""
    img = Image.new("L", (96, 96), 0)
    r = rng.randint(18, 30)
    cx, cy = rng.randint(34, 62), rng.randint(34, 62)
    ImageDraw.Draw(img).ellipse((cx - r, cy - r, cx + r, cy + r), fill=rng.randint(180, 255))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def problems(at: AppTest, what: str, must_have: str) -> list[str]:
    """Why a run counts as an error: an exception, an st.error, or the expected result missing."""
    out = [f"{what}: exception {e.value}" for e in at.exception]
    out += [f"{what}: st.error {e.value}" for e in at.error]
    if not out:
        if must_have == "image" and not at.get("image"):
            out.append(f"{what}: no decoded image")
        if must_have == "metric" and "ELBO (nats)" not in [m.label for m in at.metric]:
            out.append(f"{what}: no ELBO metric")
    return out


class Session(threading.Thread):
    def __init__(self, idx: int, model: str, upload_every: int, seed: int) -> None:
        super().__init__(name=f"session-{idx}", daemon=True)
        self.model, self.upload_every = model, upload_every
        self.rng = random.Random(seed)
        self.stop_at = float("inf")
        self.ready = threading.Event()
        self.go = threading.Event()
        self.latencies: list[tuple[str, float]] = []  # (kind, ms)
        self.errors: list[str] = []
        self.finished = False

    def app(self, page: str) -> AppTest:
        at = AppTest.from_file(page, default_timeout=TIMEOUT_S)
        at.session_state[MODEL_KEY] = self.model
        return at

    def run(self) -> None:
        try:
            sl, rc = self.app(SLIDERS), self.app(RECONSTRUCT)
            sl.run()  # warm-up: not timed
            rc.run()
            self.errors += problems(sl, "warm-up sliders", "image") + problems(rc, "warm-up reconstruct", "")
            picked = sl.selectbox(key="model_picker").value if not sl.exception else None
            if picked != self.model:
                self.errors.append(f"the app picked {picked!r}, not {self.model!r}")
        except Exception:  # noqa: BLE001 - counted and shown
            self.errors.append("warm-up: " + traceback.format_exc(limit=3))
            self.ready.set()
            self.finished = True
            return
        self.ready.set()
        self.go.wait()
        i = 0
        while time.perf_counter() < self.stop_at:
            i += 1
            upload = self.upload_every > 0 and i % self.upload_every == 0
            try:
                t0 = time.perf_counter()
                if upload:
                    up = rc.file_uploader(key="rc_upload")
                    up.set_value([(f"moon-{i}.png", moon(self.rng), "image/png")]).run()
                    kind, errs = "upload", problems(rc, "upload", "metric")
                else:
                    v = round(self.rng.uniform(-4, 4) / 0.05) * 0.05
                    sl.slider(key="z_0").set_value(round(v, 2)).run()
                    kind, errs = "slider", problems(sl, "slider", "image")
                ms = (time.perf_counter() - t0) * 1e3
            except Exception:  # noqa: BLE001 - counted and shown
                self.errors.append(traceback.format_exc(limit=3))
                continue
            if errs:
                self.errors += errs
            else:
                self.latencies.append((kind, ms))
        self.finished = True


def load(n: int, seconds: float, model: str, upload_every: int) -> dict:
    sessions = [Session(i, model, upload_every, seed=1000 * n + i) for i in range(n)]
    rss0 = proc_status("VmRSS")
    t_warm = time.perf_counter()
    for s in sessions:
        s.start()
    for s in sessions:
        s.ready.wait(TIMEOUT_S)
    warm = time.perf_counter() - t_warm
    rss_start = proc_status("VmRSS")
    stop_at = time.perf_counter() + seconds
    for s in sessions:
        s.stop_at = stop_at
        s.go.set()
    t0 = time.perf_counter()
    for s in sessions:  # each thread stops by itself; a request in flight may finish after stop_at
        s.join(timeout=max(0.0, stop_at - time.perf_counter()) + TIMEOUT_S)
    wall = time.perf_counter() - t0
    hung = [s.name for s in sessions if s.is_alive() or not s.finished]
    lat = [(k, ms) for s in sessions for k, ms in s.latencies]
    errors = [e for s in sessions for e in s.errors] + [f"{h} did not stop" for h in hung]
    return {
        "n": n,
        "served": len(lat),
        "errors": errors,
        "all": [ms for _, ms in lat],
        "slider": [ms for k, ms in lat if k == "slider"],
        "upload": [ms for k, ms in lat if k == "upload"],
        "wall": wall,
        "warm": warm,
        "rss0": rss0,
        "rss_start": rss_start,
        "rss_end": proc_status("VmRSS"),
        "hwm": proc_status("VmHWM"),
    }


def fmt(xs: list[float]) -> str:
    return f"{statistics.median(xs):7.0f} {pct(xs, 95):7.0f}" if xs else f"{'-':>7} {'-':>7}"


BROWSER_PAGES = ["/", "/Train", "/Latent_sliders", "/Interpolate", "/Latent_map", "/Reconstruct", "/Compare"]
BROWSER_PAGES += ["/Mixtures"]
APP = '[data-testid="stApp"]'


async def _open(page, url: str) -> float:
    """Seconds from goto until the page's script run has finished and its title shows (tests/e2e/st_browser)."""
    t0 = time.perf_counter()
    await page.goto(url, wait_until="domcontentloaded", timeout=TIMEOUT_S * 1e3)
    await page.wait_for_selector(f'{APP}[data-test-connection-state="CONNECTED"]', state="attached")
    await page.wait_for_selector(f'{APP}[data-test-script-state="notRunning"]', state="attached")
    await page.wait_for_function(
        """() => !document.querySelector('[data-testid="stSkeleton"], [data-testid="stSpinner"]')"""
    )
    await page.locator('[data-testid="stMain"] h1').first.wait_for(state="visible")
    return time.perf_counter() - t0


async def _walk(browser, url: str, idx: int, stop_at: float, out: list, errors: list) -> None:
    """One browser session: open page after page (starting at page ``idx``) until ``stop_at``; (path, s)."""
    ctx = await browser.new_context(viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(TIMEOUT_S * 1e3)
    page = await ctx.new_page()
    i = idx
    while time.perf_counter() < stop_at:
        path = BROWSER_PAGES[i % len(BROWSER_PAGES)]
        i += 1
        try:
            out.append((path, await _open(page, url + path)))
        except Exception as e:  # noqa: BLE001 - counted and shown
            errors.append(f"{path}: {type(e).__name__}: {str(e).splitlines()[0]}")
    await ctx.close()


def browser_load(counts: list[int], seconds: float) -> int:
    """Page opens (s) with N real browser sessions against one server: warm-up walk, then N at once."""
    import asyncio
    import tempfile

    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    from playwright.async_api import async_playwright
    from st_browser import CHROMIUM, CHROMIUM_ARGS, Server

    async def run(server: Server) -> list[dict]:
        results = []
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            ctx = await browser.new_context(viewport={"width": 1400, "height": 900})
            ctx.set_default_timeout(TIMEOUT_S * 1e3)
            page = await ctx.new_page()
            warm = [(path, await _open(page, server.url + path)) for path in BROWSER_PAGES]  # the caches warm
            await ctx.close()
            print("  warm-up walk (one session): " + ", ".join(f"{path} {t:.1f} s" for path, t in warm))
            for n in counts:
                opens: list = []
                errors: list = []
                stop_at = time.perf_counter() + seconds
                await asyncio.gather(*(_walk(browser, server.url, i, stop_at, opens, errors) for i in range(n)))
                results.append({"n": n, "opens": opens, "errors": errors})
            await browser.close()
        return results

    if LIVE_DEFAULTED:
        os.environ.pop("VAE_LIVE_DECODE")
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp), Path(tmp) / "streamlit.log")
        try:
            up = server.wait_healthy()
            print(f"Load (browser) · server up in {up:.1f} s · {seconds:g} s per N · {os.cpu_count()} CPUs")
            results = asyncio.run(run(server))
        finally:
            server.stop()
    print(f"  {'N':>3} {'opens':>6} {'errors':>6} {'median s':>9} {'p95 s':>7} {'max s':>7}  slowest page (median s)")
    for r in results:
        t = [x for _, x in r["opens"]]
        by = {}
        for path, x in r["opens"]:
            by.setdefault(path, []).append(x)
        slow = max(by.items(), key=lambda kv: statistics.median(kv[1]), default=("-", [0.0]))
        med = f"{statistics.median(t):9.2f} {pct(t, 95):7.2f} {max(t):7.2f}" if t else f"{'-':>9} {'-':>7} {'-':>7}"
        print(f"  {r['n']:>3} {len(t):>6} {len(r['errors']):>6} {med}  {slow[0]} ({statistics.median(slow[1]):.2f})")
        pages = ", ".join(f"{path} {statistics.median(xs):.1f}" for path, xs in by.items())
        print(f"        median s by page: {pages}")
        for e in r["errors"][:5]:
            print("    " + e)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", default="1,4,16", help="comma-separated session counts (default 1,4,16)")
    ap.add_argument("--seconds", type=float, default=20.0, help="timed seconds per session count (default 20)")
    ap.add_argument("--model", default="moons-vae", help="the model picker's label (default moons-vae)")
    ap.add_argument("--upload-every", type=int, default=4, help="every k-th request is an upload (default 4)")
    ap.add_argument("--browser", action="store_true", help="page opens with N real browser sessions instead")
    args = ap.parse_args(argv)
    counts = [int(x) for x in args.sessions.split(",") if x.strip()]
    if args.browser:
        return browser_load(counts, args.seconds)

    import torch  # after the parse: --help stays fast

    share_one_runtime()

    print(
        f"Load · model {args.model} · {args.seconds:g} s per N · upload every {args.upload_every} requests · "
        f"torch {torch.__version__}, {os.cpu_count()} CPUs · one process (pid {os.getpid()})"
    )
    print(f"  before any session: VmRSS {proc_status('VmRSS'):.0f} MB, VmHWM {proc_status('VmHWM'):.0f} MB")
    results = []
    for n in counts:
        r = load(n, args.seconds, args.model, args.upload_every)
        results.append(r)
        print(
            f"  N={n:<3} served {r['served']:>5} ({r['served'] / r['wall']:.1f}/s over {r['wall']:.1f} s), "
            f"errors {len(r['errors'])}, warm-up {r['warm']:.1f} s"
        )
        for e in r["errors"][:5]:
            print("    " + e.strip().replace("\n", "\n    "))

    print()
    print(
        f"  {'N':>3} {'served':>6} {'req/s':>6} {'errors':>6} {'all med':>7} {'p95':>7} {'slider':>7} {'p95':>7} "
        f"{'upload':>7} {'p95':>7} {'peak RSS':>9} {'RSS +run':>9} {'RSS +N':>8}  verdict"
    )
    for r in results:
        print(
            f"  {r['n']:>3} {r['served']:>6} {r['served'] / r['wall']:>6.1f} {len(r['errors']):>6} "
            f"{fmt(r['all'])} {fmt(r['slider'])} {fmt(r['upload'])} "
            f"{r['hwm']:>7.0f}MB {r['rss_end'] - r['rss_start']:>+7.0f}MB {r['rss_end'] - r['rss0']:>+6.0f}MB  "
            f"{'PASS' if not r['errors'] else 'MISS'}"
        )
    print(
        "  latencies in ms per request (script run); peak RSS = VmHWM of the process so far (cumulative over N);"
        "\n  RSS +run = VmRSS growth during the timed run; RSS +N = growth from before this N's sessions started"
    )
    total = sum(len(r["errors"]) for r in results)
    print(f"  errors == 0: {'PASS' if total == 0 else 'MISS'} ({total} errors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
