"""The Compare page in a real browser: the committed β sweep side by side, the rate–distortion chart
and both tables drawn, every row's picture loaded, no error; the table's toolbar clear of the L slider at
1024, 1400 and 1920 px, the KL axis on round ticks, the axis titles without raw notation; a full-page
screenshot for a person to look at."""

from __future__ import annotations

import pytest
from st_browser import ROOT, VIEWPORT, errors_on, expect, main, open_page, screenshot

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
    for label in ROWS:  # the points' labels, drawn by plotly: each names its model
        expect(rd.locator(".textpoint", has_text=label)).to_have_count(1)
    titles = rd.locator(".g-xtitle, .g-ytitle").all_text_contents()
    assert len(titles) == 2 and not [t for t in titles if "_" in t], titles  # no raw "E_q[…]"
    kl = charts.nth(1)
    kl.scroll_into_view_if_needed()
    ticks = [t.strip() for t in kl.locator(".ytick text").all_text_contents()]
    assert ticks and set(ticks) <= {"0.0001", "0.001", "0.01", "0.1", "1", "10", "100"}, ticks  # not 0.873
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
    for width in (1024, 1400, 1920):
        assert toolbar_clear_of_slider(page, width), f"the table's toolbar covers the L slider at {width} px"
    page.set_viewport_size(VIEWPORT)
    assert errors_on(page) == []
    assert "Traceback" not in server.log(tail=200_000), server.log()
    assert page.js_errors == []
    screenshot(page, "compare")


def toolbar_clear_of_slider(page, width: int) -> bool:
    """Hover the Monte Carlo table at ``width`` px: its toolbar's box must not meet the L slider's."""
    page.set_viewport_size({"width": width, "height": 1000})
    m = main(page)
    slider = m.locator('[data-testid="stSlider"]', has_text="Samples L per estimate")
    table = m.locator('[data-testid="stDataFrame"]').nth(1)
    table.scroll_into_view_if_needed()
    page.wait_for_timeout(300)  # re-layout at the new width
    table.hover()
    own = table.locator("xpath=ancestor::*[@data-testid='stElementContainer'][1]")  # this table's toolbar
    bar = own.locator('[data-testid="stElementToolbar"]').first
    expect(bar).to_be_visible()
    a, b = slider.bounding_box(), bar.bounding_box()
    apart_x = a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
    apart_y = a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"]
    return apart_x or apart_y
