"""The Latent map's upload stars in a real browser: crowded uploads get labels that never collide
(issue 22), however the map is zoomed."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw
from st_browser import errors_on, expect, main, open_page, screenshot, wait_idle
from st_live import MAP

pytestmark = pytest.mark.e2e

OVERLAP = """r => {
    const boxes = r.__map.labels().filter(Boolean);
    const hit = (a, b) => a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
    const pairs = [];
    boxes.forEach((a, i) => boxes.slice(i + 1).forEach((b) => { if (hit(a, b)) pairs.push([a[4], b[4]]); }));
    return {n: boxes.length, pairs};
}"""


def moons(folder, k: int = 4) -> list[str]:
    """k nearly alike moons (one place on the map) with long names."""
    paths = []
    for u in range(k):
        img = Image.new("L", (96, 96), 0)
        ImageDraw.Draw(img).ellipse((22 + u, 22, 74 + u, 74), fill=230 - 3 * u)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        path = folder / f"my-moon-photo-number-{u + 1}.png"
        path.write_bytes(buf.getvalue())
        paths.append(str(path))
    return paths


def test_map_upload_labels_do_not_collide(page, server, tmp_path):
    open_page(page, server.url, "/Latent_map")
    m = main(page)
    m.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(moons(tmp_path))
    expect(m.get_by_text("4 upload(s) as ★", exact=False)).to_be_visible(timeout=120_000)
    wait_idle(page)
    page.locator(f"{MAP}[data-ready='1']").wait_for(state="attached", timeout=60_000)
    plot = page.locator(f"{MAP} canvas.over")
    plot.scroll_into_view_if_needed()
    got = page.locator(MAP).evaluate(OVERLAP)
    assert got["n"] >= 1 and got["pairs"] == [], got
    screenshot(page, "latent_map_uploads")
    box = plot.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for delta in (600, 600, -2400):  # zoom out (stars closer together), then far in
        page.mouse.wheel(0, delta)
        page.wait_for_timeout(150)
        got = page.locator(MAP).evaluate(OVERLAP)
        assert got["pairs"] == [], (delta, got)
    assert errors_on(page) == [] and page.js_errors == []


@pytest.mark.parametrize("width", [1024, 1400])
def test_map_neighbour_captions_fit_in_two_lines(page, server, width):
    """A picked point's nearest test images: each caption stays within two lines (it wrapped onto four)."""
    page.set_viewport_size({"width": width, "height": 900})
    open_page(page, server.url, "/Latent_map")
    m = main(page)
    m.get_by_role("spinbutton").first.fill("7")
    m.get_by_role("spinbutton").first.press("Enter")
    expect(m.get_by_text("nearest test images in latent space")).to_be_visible(timeout=60_000)
    wait_idle(page)
    caps = m.locator('[data-testid="stImageCaption"]').filter(has_text=" · d=")
    assert caps.count() == 8
    for cap in caps.all():
        lines = cap.evaluate("e => e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight)")
        assert lines <= 2.05, (cap.inner_text(), lines)
