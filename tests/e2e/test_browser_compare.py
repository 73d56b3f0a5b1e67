"""The Compare page in a real browser: the committed β sweep side by side, the rate–distortion chart
and both tables drawn, every row's picture loaded, no error; a full-page screenshot for a person to look at."""

from __future__ import annotations

import pytest
from st_browser import ROOT, errors_on, expect, main, open_page, screenshot

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (ROOT / "checkpoints" / "moons-vae-beta4.safetensors").exists(), reason="the moons β sweep is not committed"
    ),
]

SLOW = 240_000  # ms: the first run loads three checkpoints and measures them on 2 busy cores
ROWS = ["moons-vae-beta0.5 · β = 0.5", "moons-vae · β = 1", "moons-vae-beta4 · β = 4"]


def test_compare(page, server):
    open_page(page, server.url, "/Compare", timeout=SLOW)
    m = main(page)
    expect(m.get_by_role("heading", name="Rate against distortion")).to_be_visible()
    charts = m.locator('[data-testid="stPlotlyChart"]')
    expect(charts).to_have_count(2)  # rate–distortion and the KL bars
    rd = charts.first
    rd.scroll_into_view_if_needed()
    expect(rd.locator(".main-svg").first).to_be_visible()
    for label in ("β = 0.5", "β = 1", "β = 4"):  # the points' labels, drawn by plotly
        expect(rd.locator(".textpoint", has_text=label)).to_have_count(1)
    tables = m.locator('[data-testid="stDataFrame"]')
    expect(tables).to_have_count(2)  # the bounds and rate, and the Monte Carlo estimate per model
    for t in tables.all():
        expect(t).to_be_visible()
    expect(m.get_by_role("heading", name="The Monte Carlo estimate of the ELBO, per model")).to_be_visible()
    for row in ROWS:  # reconstructions, prior samples, the interpolation: a row each
        expect(m.locator("strong", has_text=row)).to_have_count(3)
    images = m.locator('[data-testid="stImage"] img')
    assert images.count() == 11
    for img in images.all():
        img.scroll_into_view_if_needed()
        assert img.evaluate("e => (e.complete && e.naturalWidth) || 0") > 150  # the narrowest: two ends
    assert errors_on(page) == []
    assert "Traceback" not in server.log(tail=200_000), server.log()
    assert page.js_errors == []
    screenshot(page, "compare")
