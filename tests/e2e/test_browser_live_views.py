"""The live views of Interpolate and Latent map in a real browser: the picture follows the mouse
before any release, and the browser's decode matches torch's within 8-bit rounding.

The views are Streamlit v2 components in open shadow roots; Playwright's CSS locators pierce them.
"""

from __future__ import annotations

import re
import statistics
import time

import numpy as np
import pytest
import torch
from st_browser import ROOT, errors_on, expect, main, open_page, screenshot, wait_idle
from st_live import MAP, isolated_point

pytestmark = pytest.mark.e2e

SCRUB = ".vae-interpolate"
PIXELS = "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)"


def ready(page, view: str) -> None:
    """Until the view has loaded its decoder (or says why it could not)."""
    page.locator(f"{view}[data-ready='1'], {view}[data-error]").first.wait_for(state="attached", timeout=60_000)
    assert page.locator(view).first.get_attribute("data-error") is None, page.locator(view).first.get_attribute(
        "data-error"
    )


def pixels(canvas) -> np.ndarray:
    """The canvas as (H, W, 4) uint8."""
    box = canvas.evaluate("c => [c.height, c.width]")
    return np.asarray(canvas.evaluate(PIXELS), dtype=np.uint8).reshape(box[0], box[1], 4)


def painted(canvas) -> int:
    return int(canvas.get_attribute("data-painted") or 0)


def assert_clean(page, server) -> None:
    assert errors_on(page) == []
    assert "Traceback" not in server.log(tail=200_000), server.log()
    assert page.js_errors == []


def frame_times(page, name: str) -> list[float]:
    return page.evaluate(f"() => (window.__vaeLive && window.__vaeLive.{name}) || []")


def test_scrubbing_repaints_before_release_and_matches_torch(page, server):
    open_page(page, server.url, "/Interpolate")
    ready(page, SCRUB)
    canvases = page.locator(f"{SCRUB} canvas")
    assert canvases.count() == 2  # the VAE and its AE partner, side by side
    vae = canvases.nth(0)
    page.wait_for_function("c => Number(c.dataset.painted) > 0", arg=vae.element_handle())
    slider = page.locator(f"{SCRUB} input[type=range]")
    box = slider.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)  # the thumb starts at t = 0.5
    page.mouse.down()
    seen, before = [], painted(vae)
    for k in range(1, 21):  # one second, towards A
        page.mouse.move(box["x"] + box["width"] * (0.5 - 0.45 * k / 20), y)
        page.wait_for_timeout(50)
        seen.append(pixels(vae)[..., 0].tobytes())
    assert painted(vae) > before
    assert len(set(seen)) >= 10, f"the picture changed at {len(set(seen))} of 20 steps before release"
    assert not main(page).get_by_text(re.compile(r"^At t = ")).count()  # Python has heard nothing yet
    page.mouse.up()
    expect(main(page).get_by_text(re.compile(r"^At t = 0\.0[2-5]\d: VAE · moons-vae: "))).to_be_visible()
    wait_idle(page)

    # Parity: t = 0 is z_A, the posterior mean of A; the picture must be torch's decode of it.
    slider.focus()
    page.keyboard.press("Home")
    page.wait_for_function("r => r.dataset.t === '0'", arg=page.locator(SCRUB).element_handle())
    expect(main(page).get_by_text(re.compile(r"^At t = 0\.000: "))).to_be_visible()
    wait_idle(page)
    caption = main(page).locator('[data-testid="stImageCaption"]').first.inner_text()
    index = int(re.fullmatch(r"full moon #(\d+)", caption).group(1))
    drawn = pixels(vae)
    expected = torch_picture(index)
    scale = drawn.shape[0] // expected.shape[0]
    centres = drawn[scale // 2 :: scale, scale // 2 :: scale, :3]  # one canvas pixel per image pixel
    assert centres.shape[:2] == expected.shape
    assert np.abs(centres.astype(int) - expected[..., None].astype(int)).max() <= 1  # 8-bit rounding
    assert_clean(page, server)
    times = frame_times(page, "frames")
    print(f"\nscrub: decode + paint of 2 models, p50 {statistics.median(times):.2f} ms over {len(times)} frames")
    screenshot(page, "interpolate_live")


def torch_picture(index: int) -> np.ndarray:
    """moons-vae's decode of the posterior mean of test image ``index``, as 8-bit grey (H, W)."""
    from vae.checkpoint import load_checkpoint
    from vae.data import load_dataset

    model = load_checkpoint(ROOT / "checkpoints" / "moons-vae.safetensors").model.eval()
    x = load_dataset("moons", image_size=28, download=False).test_x[index]
    with torch.no_grad():
        mean = model.decode(model.encode(x[None]).mean)[0, 0]
    return np.asarray(torch.round(mean.clamp(0, 1) * 255), dtype=np.uint8)


def wait_drawn(page, ok, timeout: float = 60.0) -> int:
    """Waits until the map's count of drawn posterior ellipses satisfies ``ok`` (the view may re-mount)."""
    end = time.monotonic() + timeout
    while True:
        k = page.locator(MAP).evaluate("r => (r.__map && r.__map.ellipses ? r.__map.ellipses() : -1)")
        if ok(k) or time.monotonic() > end:
            assert ok(k), f"{k} ellipses drawn"
            return k
        page.wait_for_timeout(200)


def test_hovering_the_map_decodes_and_shows_thumbnails(page, server):
    open_page(page, server.url, "/Latent_map")
    m = main(page)
    ready(page, MAP)
    expect(page.locator(MAP).get_by_text("the inverse of the PCA projection")).to_be_visible()
    decoded, thumb = page.locator(f"{MAP} canvas.decoded"), page.locator(f"{MAP} canvas.thumb")
    page.wait_for_function("c => Number(c.dataset.painted) > 0", arg=decoded.element_handle())
    plot = page.locator(f"{MAP} canvas.over")
    plot.scroll_into_view_if_needed()
    box = plot.bounding_box()
    # Sweep across the map: the decoded picture follows the mouse.
    seen = []
    for k in range(20):
        page.mouse.move(box["x"] + box["width"] * (0.2 + 0.6 * k / 19), box["y"] + box["height"] * 0.5)
        page.wait_for_timeout(50)
        seen.append(pixels(decoded)[..., 0].tobytes())
    assert len(set(seen)) >= 10, f"the decoded picture changed at {len(set(seen))} of 20 positions"
    expect(page.locator(f"{MAP} .where")).to_contain_text("PC 1 = ")

    # Zoom in (scroll up over the middle): the click's rerun below must keep this view.
    home = page.locator(MAP).evaluate("r => r.__map.view()")
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    page.mouse.wheel(0, -300)
    page.wait_for_timeout(100)
    zoomed = page.locator(MAP).evaluate("r => r.__map.view()")
    assert zoomed["x1"] - zoomed["x0"] < 0.8 * (home["x1"] - home["x0"]), (home, zoomed)
    target = isolated_point(page)
    assert target["gap"] >= 4, target
    before = painted(thumb)
    page.mouse.move(target["x"], target["y"])
    expect(page.locator(f"{MAP} .which")).to_have_text(re.compile(rf"^test image #{target['i']} · "))
    assert painted(thumb) > before
    assert pixels(thumb)[..., :3].max() > 100  # a moon, not an empty box

    page.mouse.click(target["x"], target["y"])  # a click picks the point for the server's panel
    expect(m.locator('[data-testid="stImageCaption"]').filter(has_text=f"original #{target['i']} ·")).to_be_visible()
    wait_idle(page)
    assert m.get_by_role("spinbutton").first.input_value() == str(target["i"])
    # The picked point's posterior ellipses (±1σ, ±2σ) are drawn; the option adds every point's ±1σ.
    wait_drawn(page, lambda k: k == 2)
    assert page.locator(MAP).evaluate("r => r.__map.view()") == zoomed  # the rerun kept the zoom
    m.locator('[data-testid="stCheckbox"]').filter(has_text="noise clouds").locator("label").first.click()
    wait_drawn(page, lambda k: k > 50)  # the picked point's two and one for each shown point
    wait_idle(page)
    assert_clean(page, server)
    times, hover = frame_times(page, "frames"), frame_times(page, "hover")
    print(
        f"\nmap hover: decode + paint p50 {statistics.median(times):.2f} ms; "
        f"mouse event to painted p50 {statistics.median(hover):.1f} ms, max {max(hover):.1f} ms ({len(hover)} moves)"
    )
    screenshot(page, "latent_map_live")


def test_tsne_map_has_no_inverse_but_thumbnails(page, server):
    open_page(page, server.url, "/Latent_map")
    m = main(page)
    m.locator('[data-testid="stRadio"]').get_by_text("t-SNE").click()
    expect(page.locator(MAP).get_by_text("t-SNE has no inverse")).to_be_visible(timeout=180_000)
    ready(page, MAP)
    # A cold t-SNE finishes in the background and the page reruns: the PCA view it showed meanwhile (with its
    # decode panel) is replaced by the t-SNE view, which has none.
    expect(page.locator(f"{MAP} canvas.decoded")).to_have_count(0, timeout=60_000)
    wait_idle(page)
    target = isolated_point(page)
    page.mouse.move(target["x"], target["y"])
    expect(page.locator(f"{MAP} .which")).to_have_text(re.compile(rf"^test image #{target['i']} · "))
    wait_idle(page)
    assert_clean(page, server)
