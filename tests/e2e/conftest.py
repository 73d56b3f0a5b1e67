"""Real-browser fixtures: one Streamlit server and one headless Chromium for the whole session.

The browser is Debian's ``chromium`` (``make browser`` installs it; never ``playwright install``),
driven by Playwright for Python. Without /usr/bin/chromium the browser tests fail under CI
(``CI`` set) and are skipped otherwise, with the reason.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from st_browser import SCREENSHOTS, VIEWPORT, Server, launch, missing_browser  # noqa: E402

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def require_browser() -> None:
    why = missing_browser()
    if why is None:
        return
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"browser tests cannot run under CI: {why}", pytrace=False)
    pytest.skip(f"browser tests skipped (CI not set): {why}")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Overrides the suite's guard: these tests talk to their own local server, and to nothing else."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOOPBACK:
            raise OSError(f"network access in tests is not allowed (tried {address!r})")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setenv("VAE_DATA_DIR", os.devnull + "-no-such-data-dir")


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The app, started from the repo root; checkpoints trained in it go to a temporary folder."""
    require_browser()
    for old in SCREENSHOTS.glob("FAILED-*.png"):  # from an earlier session
        old.unlink(missing_ok=True)
    base = tmp_path_factory.mktemp("e2e")
    trained = base / "trained"
    trained.mkdir()
    srv = Server(trained, base / "streamlit.log")
    try:
        srv.wait_healthy()
        yield srv
    finally:
        srv.stop()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / "streamlit.log").write_text(srv.log_path.read_text(errors="replace"))


@pytest.fixture(scope="session")
def browser():
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, server, request):
    """A fresh browser context (a new Streamlit session) per test; a screenshot when the test fails."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(60_000)
    pg = context.new_page()
    js_errors: list[str] = []
    pg.on("pageerror", lambda e: js_errors.append(str(e)))
    pg.js_errors = js_errors
    yield pg
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        try:
            pg.screenshot(path=str(SCREENSHOTS / f"FAILED-{request.node.name}.png"), full_page=True)
        except Exception:  # noqa: BLE001 - best effort
            pass
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
