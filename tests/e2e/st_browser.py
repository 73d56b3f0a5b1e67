"""Helpers shared by the browser tests and benchmarks/app_latency.py.

A Streamlit server in a subprocess, Debian's Chromium driven by Playwright, and the waits that
make a Streamlit page deterministic to test: the app root carries ``data-test-script-state``
("initial", "running", "notRunning"), which says when a script run (or fragment run) has finished.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

try:  # re-exported for the test files
    from playwright.sync_api import expect
except ImportError:  # the fixtures then fail (CI) or skip the tests with the reason
    expect = None

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("VAE_E2E_CHROMIUM", "/usr/bin/chromium")
# Installed by `make browser` from Debian (apt-get install chromium); never `playwright install`.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1400, "height": 1000}
SERVER_START_S = 90
RUN_TIMEOUT_MS = 180_000  # first loads import torch and load checkpoints: slow on 2 busy cores

APP = '[data-testid="stApp"]'
IDLE = f'{APP}[data-test-script-state="notRunning"]'


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 2.0) -> str:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read().decode(errors="replace").strip()
    except OSError:
        return ""


class Server:
    """``streamlit run app.py`` from the repo root, on a free port, with its output in a log file."""

    def __init__(self, trained_dir: Path, log_path: Path, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.trained_dir = Path(trained_dir)
        self.log_path = Path(log_path)
        env = dict(os.environ, VAE_TRAINED_DIR=str(trained_dir), PYTHONUNBUFFERED="1")
        env.pop("VAE_CHECKPOINT_DIR", None)  # the committed checkpoints
        cmd = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(self.port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",
        ]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() ends it and its children
        )

    def wait_healthy(self, timeout: float = SERVER_START_S) -> float:
        """Seconds from process start until /_stcore/health answers 'ok'."""
        deadline = self.started + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with code {self.proc.returncode}:\n{self.log()}")
            if http_get(f"{self.url}/_stcore/health") == "ok":
                return time.perf_counter() - self.started
            time.sleep(0.2)
        raise RuntimeError(f"streamlit did not answer /_stcore/health within {timeout:.0f} s:\n{self.log()}")

    def log(self, tail: int = 5000) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")[-tail:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
            except ProcessLookupError:
                pass
        self._log.close()


def missing_browser() -> str | None:
    """Why a browser cannot be driven here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the 'playwright' package is not installed (make setup installs requirements.txt)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)"
    return None


def launch(playwright):
    """Debian's Chromium, headless, through Playwright's own driver."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


# --------------------------------------------------------------------------- page helpers


def wait_idle(page, timeout: int = RUN_TIMEOUT_MS) -> None:
    """Until the script (or fragment) run has finished and no skeleton or spinner is left."""
    page.wait_for_selector(IDLE, state="attached", timeout=timeout)
    page.wait_for_function(
        """() => !document.querySelector('[data-testid="stSkeleton"], [data-testid="stSpinner"]')""",
        timeout=timeout,
    )


def open_page(page, base_url: str, path: str, timeout: int = RUN_TIMEOUT_MS) -> None:
    """Load a page of the app and wait for its first run to finish."""
    page.goto(base_url.rstrip("/") + path, wait_until="domcontentloaded", timeout=timeout)
    page.wait_for_selector(f'{APP}[data-test-connection-state="CONNECTED"]', state="attached", timeout=timeout)
    wait_idle(page, timeout)
    page.locator('[data-testid="stMain"] h1').first.wait_for(state="visible", timeout=timeout)


def main(page):
    return page.locator('[data-testid="stMain"]')


def errors_on(page) -> list[str]:
    """Texts of exceptions and st.error boxes on the page (should be empty)."""
    return page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').all_inner_texts()


def image_src(locator) -> str:
    return locator.get_attribute("src") or ""


def wait_src_change(page, selector: str, old: str, index: int = 0, timeout: int = RUN_TIMEOUT_MS) -> str:
    """Until the index-th element matching ``selector`` has a loaded image source other than ``old``."""
    page.wait_for_function(
        """([sel, i, old]) => {
            const el = document.querySelectorAll(sel)[i];
            return !!el && !!el.src && el.src !== old && el.complete && el.naturalWidth > 0;
        }""",
        arg=[selector, index, old],
        timeout=timeout,
    )
    return page.locator(selector).nth(index).get_attribute("src")


def focus_slider(page, label: str | None = None, index: int = 0):
    """The keyboard-focusable thumb of a Streamlit slider (react-aria: a hidden range input)."""
    sliders = main(page).locator('[data-testid="stSlider"]')
    if label is not None:
        sliders = sliders.filter(has_text=label)
    thumb = sliders.nth(index).locator('[role="slider"], input[type="range"]').first
    thumb.focus()
    return thumb


def screenshot(page, name: str, max_height: int = 9000) -> Path:
    """A full-page screenshot: Streamlit scrolls inside the app container, so grow the viewport to fit it."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    size = page.viewport_size or VIEWPORT
    height = page.evaluate(
        """() => Math.max(document.documentElement.scrollHeight, ...[...document.querySelectorAll(
            '[data-testid="stMain"], [data-testid="stAppViewContainer"], [data-testid="stMainBlockContainer"]'
        )].map(e => e.scrollHeight + e.getBoundingClientRect().top))"""
    )
    page.set_viewport_size({"width": size["width"], "height": int(min(max_height, max(size["height"], height + 40)))})
    page.wait_for_timeout(500)  # let charts re-layout at the new size
    try:
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(size)
    return path


def fill_train_form(m, epochs: str, name: str, hidden: str | None, key: str) -> None:
    """Type the Train form's Epochs, Checkpoint name and (if given) Hidden sizes, each followed by ``key``
    ("Tab" moves on; "Enter" is what must never start a run)."""
    fields = [("spinbutton", "Epochs", epochs), ("textbox", "Checkpoint name", name)]
    fields.append(("textbox", "Hidden sizes (mlp widths or conv channels)", hidden))
    for role, label, value in fields:
        box = m.get_by_role(role, name=label)
        if value is not None:
            box.fill(value)
        box.press(key)
