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
import json
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


def proc_status(field: str, pid: int | str = "self") -> float:
    """A field of /proc/PID/status in MiB (VmRSS, VmHWM); ru_maxrss where /proc is missing."""
    try:
        for ln in Path(f"/proc/{pid}/status").read_text().splitlines():
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
TARGET_P95_S = 2.0  # issue 22: page-open p95 with 4 sessions <= 2 s
TIMING = ROOT / "benchmarks" / "timing"  # its sitecustomize.py times each page's script run in the server
# When a page open is done, polled every POLL_MS in the page (one predicate, no requestAnimationFrame polling,
# which would keep four headless pages drawing frames and take the CPU this measures): the app is connected; its
# script state is "notRunning" (a fresh page load's app root says "initial" until its first run starts, "running"
# during it), and for a click in the sidebar a run has started since (``window.__vaeRuns``, WATCH_RUNS); no
# skeleton or spinner is left; the title shows; and every live view that paints a decoded picture on load (not
# the latent map, whose decoder paints on hover) has painted it (canvas.dataset.painted, static/live/decoder.mjs,
# in the views' shadow roots) or says why it cannot.
POLL_MS = 50
NAV_START_S = 30
RUN_DONE = """(clicked) => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app || app.getAttribute('data-test-connection-state') !== 'CONNECTED') return false;
    if (app.getAttribute('data-test-script-state') !== 'notRunning') return false;
    if (clicked && !(window.__vaeRuns && window.__vaeRuns.started > 0)) return false;
    return !document.querySelector('[data-testid="stSkeleton"], [data-testid="stSpinner"]');
}"""
DONE = f"""(clicked) => {{
    if (!({RUN_DONE})(clicked)) return false;
    const h1 = document.querySelector('[data-testid="stMain"] h1');
    if (!h1 || !h1.getClientRects().length) return false;
    const hosts = [...document.querySelectorAll('[data-testid="stMain"] *')].filter((e) => e.shadowRoot);
    const roots = [document, ...hosts.map((e) => e.shadowRoot)];
    const sel = '.vae-latent_sliders, .vae-latent_pad, .vae-interpolate';
    return roots.flatMap((r) => [...r.querySelectorAll(sel)]).every((v) => {{
        const cs = [...v.querySelectorAll('canvas[data-painted]')];
        return v.dataset.error || (cs.length > 0 && cs.every((c) => Number(c.dataset.painted) > 0));
    }});
}}"""
# Counts the app root's script runs: a MutationObserver sees every change of its script state (each record's
# oldValue is the value before it), so a run that starts and ends between two polls is not missed.
WATCH_RUNS = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    window.__vaeRuns = { started: 0 };
    new MutationObserver((recs) => {
        const now = app.getAttribute('data-test-script-state');
        const values = recs.slice(1).map((r) => r.oldValue).concat([now]);
        window.__vaeRuns.started += values.filter((v) => v === 'running').length;
    }).observe(app, { attributes: true, attributeFilter: ['data-test-script-state'], attributeOldValue: true });
}"""


async def _open(page, url: str) -> tuple[float, float]:
    """Seconds from ``goto`` (a full page load: a new websocket and a new server session, as a user opening
    the URL) until the page's first script run has finished (RUN_DONE) and until the page is done (DONE: its
    title and live pictures shown too)."""
    t0 = time.perf_counter()
    await page.goto(url, wait_until="domcontentloaded", timeout=TIMEOUT_S * 1e3)
    await page.wait_for_function(RUN_DONE, arg=False, polling=POLL_MS)
    run = time.perf_counter() - t0
    await page.wait_for_function(DONE, arg=False, polling=POLL_MS)
    t = time.perf_counter() - t0
    await page.evaluate(WATCH_RUNS)
    return t, run


async def _navigate(page, path: str) -> tuple[float, float]:
    """Seconds from a click on the page's link in the sidebar (Streamlit's own navigation: the same websocket
    and session, the browser's loaded scripts kept) until the new page's run has finished and it is done."""
    links = page.locator('[data-testid="stSidebarNav"] a')
    link = links.first if path == "/" else page.locator(f'[data-testid="stSidebarNav"] a[href$="{path}"]').first
    await page.evaluate("() => { window.__vaeRuns.started = 0; }")
    t0 = time.perf_counter()
    await link.click()
    # A click that starts no run within NAV_START_S is an error (the walk then opens the next page by its URL).
    await page.wait_for_function("() => window.__vaeRuns.started > 0", polling=POLL_MS, timeout=NAV_START_S * 1e3)
    await page.wait_for_function(RUN_DONE, arg=True, polling=POLL_MS)
    run = time.perf_counter() - t0
    await page.wait_for_function(DONE, arg=True, polling=POLL_MS)
    return time.perf_counter() - t0, run


async def _walk(browser, url: str, idx: int, stop_at: float, how: str, out: list, errors: list) -> None:
    """One browser session: open page after page (starting at page ``idx``) until ``stop_at``, each by its URL
    (``how`` "load") or, after the first, by the sidebar (``how`` "nav"); (path, "load" or "nav", s, run s)."""
    ctx = await browser.new_context(viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(TIMEOUT_S * 1e3)
    page = await ctx.new_page()
    i, loaded = idx, False
    while time.perf_counter() < stop_at:
        path = BROWSER_PAGES[i % len(BROWSER_PAGES)]
        i += 1
        try:
            if how == "nav" and loaded:
                out.append((path, "nav", *await _navigate(page, path)))
            else:
                out.append((path, "load", *await _open(page, url + path)))
                loaded = True
        except Exception as e:  # noqa: BLE001 - counted and shown
            errors.append(f"{path}: {type(e).__name__}: {str(e).splitlines()[0]}")
            loaded = False  # the next page by its URL again
    await ctx.close()


def _cpu_by_tree(roots: list[int]) -> list[float]:
    """CPU seconds (user + system, each process's own and its reaped children's) of each root's process tree
    (the process and its live descendants), a tree inside an earlier root's counted only there."""
    tick = os.sysconf("SC_CLK_TCK")
    parent, cpu = {}, {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                f = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parent[int(d.name)] = int(f[1])
            cpu[int(d.name)] = sum(int(x) for x in f[11:15]) / tick  # utime stime cutime cstime

    def root_of(pid: int) -> int | None:
        while pid > 1:
            if pid in roots:
                return pid
            pid = parent.get(pid, 0)
        return None

    out = dict.fromkeys(roots, 0.0)
    for pid, c in cpu.items():
        r = root_of(pid)
        if r is not None:
            out[r] += c
    return [out[r] for r in roots]


def _machine_cpu() -> float:
    """Busy CPU seconds of the whole machine so far (all cores; /proc/stat less idle and iowait)."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(f) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")


def _runs(log: Path, t0: float, t1: float) -> list[dict]:
    """The server's page runs (benchmarks/timing) that started in [t0, t1); reruns and stops included."""
    if not log.exists():
        return []
    recs = [json.loads(ln) for ln in log.read_text().splitlines() if ln.strip()]
    return [r for r in recs if t0 <= r["start"] < t1]


def _med_p95(xs: list[float]) -> str:
    return f"{statistics.median(xs):5.2f} {pct(xs, 95):5.2f}" if xs else f"{'-':>5} {'-':>5}"


def _report(r: dict) -> None:
    """One run's table: page opens (browser) against the server's script runs, by page, and the CPU split."""
    t = [x for _, k, x, _ in r["opens"] if k == r["how"]]
    what = "by URL (full page loads)" if r["how"] == "load" else "by the sidebar (the first open by URL not counted)"
    print(f"  N={r['n']}, pages opened {what}: {len(t)} opens, {len(r['errors'])} errors over {r['wall']:.0f} s")
    print(
        f"    {'page':<16} {'opens':>5} {'open med':>8} {'p95':>5} {'run done':>8} {'p95':>5} "
        f"{'script med':>10} {'p95':>5} {'cpu med':>7}"
    )
    for path in BROWSER_PAGES + ["all"]:
        mine = [o for o in r["opens"] if (path == "all" or o[0] == path) and o[1] == r["how"]]
        runs = [x for x in r["runs"] if path == "all" or x["page"] == path]
        wall, cpu = [x["wall"] for x in runs], [x["cpu"] for x in runs]
        cpu_med = f"{statistics.median(cpu):7.2f}" if cpu else f"{'-':>7}"
        opened, ran = [o[2] for o in mine], [o[3] for o in mine]
        cols = f"{_med_p95(opened):>14} {_med_p95(ran):>14} {_med_p95(wall):>16}"
        print(f"    {path:<16} {len(mine):>5} {cols} {cpu_med}")
    c = r["cpu"]
    rest = max(0.0, c["machine"] - c["server"] - c["browser"] - c["bench"])
    cores = (os.cpu_count() or 1) * r["wall"]
    print(
        f"    CPU s over the run ({cores:.0f} core-s available): server {c['server']:.1f}, browsers "
        f"{c['browser']:.1f}, this script {c['bench']:.1f}, the rest of the machine {rest:.1f}"
    )
    if t:
        per = len(r["opens"])
        print(
            f"    per open: browsers {c['browser'] / per:.2f} CPU s, server {c['server'] / per:.2f} CPU s; page open"
            f" p95 {pct(t, 95):.2f} s = {pct(t, 95) / TARGET_P95_S:.2f} x the {TARGET_P95_S:g} s target"
        )
    print("    server memory: VmRSS {:.0f} -> {:.0f} MB over the run, peak (VmHWM, so far) {:.0f} MB".format(*r["rss"]))
    for e in r["errors"][:5]:
        print("    " + e)


def browser_load(counts: list[int], seconds: float, hows: list[str]) -> int:
    """Page opens (s) with N real browser sessions against one server: warm-up walk, then N at once, for each
    way of opening pages in ``hows`` ("load": by URL, "nav": by the sidebar)."""
    import asyncio
    import tempfile

    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    from playwright.async_api import async_playwright
    from st_browser import CHROMIUM, CHROMIUM_ARGS, Server

    async def one(browser, server: Server, log: Path, n: int, how: str) -> dict:
        opens: list = []
        errors: list = []
        roots = [server.proc.pid, os.getpid()]  # the browsers are this process's children (Playwright's)
        (srv0, all0), m0, me0 = _cpu_by_tree(roots), _machine_cpu(), time.process_time()
        rss0 = proc_status("VmRSS", server.proc.pid)
        t0 = time.perf_counter()
        await asyncio.gather(*(_walk(browser, server.url, i, t0 + seconds, how, opens, errors) for i in range(n)))
        t1 = time.perf_counter()
        (srv1, all1), me = _cpu_by_tree(roots), time.process_time() - me0
        cpu = {"server": srv1 - srv0, "browser": all1 - all0 - me, "bench": me, "machine": _machine_cpu() - m0}
        rss = (rss0, proc_status("VmRSS", server.proc.pid), proc_status("VmHWM", server.proc.pid))
        return {"n": n, "how": how, "opens": opens, "errors": errors, "wall": t1 - t0, "cpu": cpu,
                "runs": _runs(log, t0, t1), "rss": rss}  # fmt: skip

    async def run(server: Server, log: Path) -> list[dict]:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            ctx = await browser.new_context(viewport={"width": 1400, "height": 900})
            ctx.set_default_timeout(TIMEOUT_S * 1e3)
            page = await ctx.new_page()
            warm = [(path, (await _open(page, server.url + path))[0]) for path in BROWSER_PAGES]  # caches warm
            await ctx.close()
            print("  warm-up walk (one session): " + ", ".join(f"{path} {t:.1f} s" for path, t in warm))
            results = [await one(browser, server, log, n, how) for how in hows for n in counts]
            await browser.close()
        return results

    if LIVE_DEFAULTED:
        os.environ.pop("VAE_LIVE_DECODE")
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "runs.jsonl"
        os.environ["VAE_BENCH_RUNLOG"] = str(log)
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TIMING), os.environ.get("PYTHONPATH")]))
        server = Server(Path(tmp), Path(tmp) / "streamlit.log")
        try:
            up = server.wait_healthy()
            print(f"Load (browser) · server up in {up:.1f} s · {seconds:g} s per N · {os.cpu_count()} CPUs")
            results = asyncio.run(run(server, log))
        finally:
            server.stop()
    print("  seconds: open = from goto or the click until the page is done in the browser (live pictures too);")
    print("  run done = until its script run has finished in the browser; script = the page's run in the server")
    print("  (benchmarks/timing); cpu = the server thread's CPU seconds in that run")
    for r in results:
        _report(r)
    for r in results:
        t = [x for _, k, x, _ in r["opens"] if k == r["how"]]
        if t:
            print(
                f"  N={r['n']} {r['how']:<4}: page open median {statistics.median(t):.2f} s, p95 {pct(t, 95):.2f} s "
                f"({pct(t, 95) / TARGET_P95_S:.2f} x the {TARGET_P95_S:g} s p95 target), {len(r['errors'])} errors"
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", default="1,4,16", help="comma-separated session counts (default 1,4,16)")
    ap.add_argument("--seconds", type=float, default=20.0, help="timed seconds per session count (default 20)")
    ap.add_argument("--model", default="moons-vae", help="the model picker's label (default moons-vae)")
    ap.add_argument("--upload-every", type=int, default=4, help="every k-th request is an upload (default 4)")
    ap.add_argument("--browser", action="store_true", help="page opens with N real browser sessions instead")
    ap.add_argument(
        "--opens", default="load,nav", help="--browser: pages opened by URL (load), by the sidebar (nav), or both"
    )
    args = ap.parse_args(argv)
    counts = [int(x) for x in args.sessions.split(",") if x.strip()]
    if args.browser:
        return browser_load(counts, args.seconds, [h for h in args.opens.split(",") if h.strip()])

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
