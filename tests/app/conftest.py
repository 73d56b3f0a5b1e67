"""Fixtures of the page tests (AppTest)."""

from __future__ import annotations

import pytest


@pytest.fixture
def no_runtime(monkeypatch):
    """The in-browser runtime is missing: every live view must fall back to decoding on the server."""
    from services import live
    from ui.live import decoder_for

    monkeypatch.setattr(live, "runtime_missing", lambda static=None: ["ort/ort.wasm.bundle.min.mjs"])
    decoder_for.clear()  # decoders are cached per model and process
    yield
    decoder_for.clear()
