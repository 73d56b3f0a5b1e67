"""Every page of the app in a real browser (headless Debian Chromium, driven by Playwright).

One Streamlit server serves the whole module (see conftest.py); each test opens a new session,
drives one page like a user would and saves a full-page screenshot to artifacts/screenshots/.
"""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

try:
    from playwright.sync_api import expect
except ImportError:  # the fixtures then fail (CI) or skip the tests with the reason
    expect = None
from st_browser import (
    ROOT,
    errors_on,
    focus_slider,
    image_src,
    main,
    open_page,
    screenshot,
    wait_idle,
    wait_src_change,
)

pytestmark = pytest.mark.e2e

IMAGES = '[data-testid="stMain"] [data-testid="stImage"] img'
SLOW = 240_000  # ms: scoring, encoding a test set or training on 2 busy cores


def page_url(path: Path) -> str:
    """Streamlit's URL for pages/N_Some_name.py: the file name without its number prefix."""
    return "/" + re.sub(r"^\d+_", "", path.stem)


PAGES = sorted((ROOT / "pages").glob("*.py"))


def assert_clean(page, server) -> None:
    """No exception or error box on the page, no traceback in the server's log, no JS error."""
    assert errors_on(page) == []
    assert "Traceback" not in server.log(tail=200_000), server.log()
    assert page.js_errors == []


def loaded(img) -> int:
    """The natural width of a loaded image (0 if it is broken or empty)."""
    return img.evaluate("e => (e.complete && e.naturalWidth) || 0")


def test_sidebar_links_every_page(page, server):
    open_page(page, server.url, "/")
    hrefs = page.locator('[data-testid="stSidebarNav"] a').evaluate_all("els => els.map(e => new URL(e.href).pathname)")
    assert hrefs[0] == "/"
    assert hrefs[1:] == [page_url(p) for p in PAGES]
    assert {"/Train", "/Latent_sliders", "/Interpolate"} <= set(hrefs)


def test_home(page, server):
    open_page(page, server.url, "/")
    m = main(page)
    expect(m.get_by_text("Model card · moons-vae")).to_be_visible()
    metrics = m.locator('[data-testid="stMetric"]')
    for label in ("Data set", "Latent size", "Test ELBO (nats)", "Active units"):
        expect(metrics.filter(has_text=label).first).to_be_visible()
    assert metrics.count() == 10
    samples = page.locator(IMAGES).first
    expect(samples).to_be_visible()
    assert loaded(samples) > 200
    old = image_src(samples)
    m.get_by_role("button", name="Resample").click()
    wait_src_change(page, IMAGES, old)
    wait_idle(page)
    assert_clean(page, server)
    screenshot(page, "home")


def test_latent_sliders(page, server):
    open_page(page, server.url, "/Latent_sliders")
    m = main(page)
    expect(m.locator('[data-testid="stImage"]').first).to_contain_text("decoded mean of p(x|z)")
    decoded = page.locator(IMAGES).first
    expect(decoded).to_be_visible()
    assert loaded(decoded) >= 280
    old = image_src(decoded)
    thumb = focus_slider(page, index=0)
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    new = wait_src_change(page, IMAGES, old)
    wait_idle(page)
    slider = m.locator('[data-testid="stSlider"]').first
    expect(slider.locator('[data-testid="stSliderThumbValue"]')).to_have_text("0.25")
    assert float(thumb.get_attribute("aria-valuenow") or thumb.input_value()) == pytest.approx(0.25)
    assert image_src(decoded) != old and new
    # Back with the mouse: drag the thumb to the left end (-4).
    box = slider.locator('[data-testid="stSliderThumbValue"]').bounding_box()
    track = slider.locator('[role="group"]').bounding_box()
    old = image_src(decoded)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] + 6)
    page.mouse.down()
    page.mouse.move(track["x"] - 20, box["y"] + box["height"] + 6, steps=8)
    page.mouse.up()
    wait_src_change(page, IMAGES, old)
    wait_idle(page)
    expect(slider.locator('[data-testid="stSliderThumbValue"]')).to_have_text("-4.00")
    assert_clean(page, server)
    screenshot(page, "latent_sliders")


def test_interpolate(page, server):
    open_page(page, server.url, "/Interpolate")
    m = main(page)
    captions = m.locator('[data-testid="stImageCaption"]').all_inner_texts()
    assert captions[0].startswith("full moon #") and captions[1].startswith("first quarter #"), captions
    for row in ("VAE · moons-vae", "AE · moons-ae", "pixel cross-fade"):
        expect(m.locator("strong", has_text=row).first).to_be_visible()
    images = page.locator(IMAGES)
    assert images.count() == 5  # two ends and three strips
    strip = images.nth(2)  # the VAE's row
    width = loaded(strip)
    assert width > 0
    old = image_src(strip)
    focus_slider(page, "Steps")
    page.keyboard.press("ArrowRight")
    wait_src_change(page, IMAGES, old, index=2)
    wait_idle(page)
    expect(
        m.locator('[data-testid="stSlider"]').filter(has_text="Steps").locator('[data-testid="stSliderThumbValue"]')
    ).to_have_text("10")
    assert loaded(strip) > width  # one more frame in the strip
    assert_clean(page, server)
    screenshot(page, "interpolate")


# A point of the plotly map to click: the most isolated visible marker (so the click cannot land on
# another), in page pixels, from plotly's own axes (l2p: data -> pixels) and full data. Scattergl draws
# on a WebGL canvas, so there is no SVG element per point to click.
ISOLATED_POINT = """gd => {
    const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, pts = [];
    gd._fullData.forEach(t => {
        if (t.visible !== true || !t.customdata) return;
        for (let k = 0; k < t.x.length; k++)
            pts.push({px: xa._offset + xa.l2p(t.x[k]), py: ya._offset + ya.l2p(t.y[k]), idx: Number(t.customdata[k])});
    });
    let best = null, gap = -1;
    for (const p of pts) {
        if (p.idx < 0 || p.px < xa._offset + 8 || p.px > xa._offset + xa._length - 8
            || p.py < ya._offset + 8 || p.py > ya._offset + ya._length - 8) continue;
        let d = Infinity;
        for (const q of pts) if (q !== p) d = Math.min(d, Math.hypot(p.px - q.px, p.py - q.py));
        if (d > gap) { gap = d; best = p; }
    }
    const r = gd.getBoundingClientRect();
    return best && {x: r.left + best.px, y: r.top + best.py, idx: best.idx, gap: gap, n: pts.length};
}"""


@pytest.mark.skipif(not (ROOT / "pages" / "4_Latent_map.py").exists(), reason="pages/4_Latent_map.py is missing")
def test_latent_map(page, server):
    open_page(page, server.url, "/Latent_map")
    m = main(page)
    expect(m.get_by_text("PCA of 16-D posterior means")).to_be_visible()
    expect(m.get_by_text("Click a point on the map to decode it")).to_be_visible()
    graph = m.locator('[data-testid="stPlotlyChart"] .js-plotly-plot').first
    graph.scroll_into_view_if_needed()
    page.wait_for_function(
        "el => el._fullLayout && el._fullData && el._fullData.length > 0", arg=graph.element_handle(), timeout=60_000
    )
    target = graph.evaluate(ISOLATED_POINT)
    assert target is not None and target["n"] == 1000 and target["gap"] >= 4, target
    page.mouse.move(target["x"], target["y"])
    page.mouse.click(target["x"], target["y"])
    caption = m.locator('[data-testid="stImageCaption"]').filter(has_text=f"original #{target['idx']} ·")
    expect(caption).to_be_visible(timeout=60_000)
    wait_idle(page)
    expect(m.locator('[data-testid="stImageCaption"]').filter(has_text="decoding of μ(x)")).to_be_visible()
    expect(m.get_by_text("nearest test images in latent space")).to_be_visible()
    assert m.get_by_role("spinbutton").first.input_value() == str(target["idx"])
    for img in page.locator(IMAGES).all():
        assert loaded(img) > 0
    assert_clean(page, server)
    screenshot(page, "latent_map")


def moon_png(path: Path) -> Path:
    """A white disk on black: what the moons model expects."""
    img = Image.new("L", (96, 96), 0)
    ImageDraw.Draw(img).ellipse((22, 22, 74, 74), fill=230)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    path.write_bytes(buf.getvalue())
    return path


def test_reconstruct(page, server, tmp_path):
    open_page(page, server.url, "/Reconstruct")
    m = main(page)
    expect(m.get_by_text("Upload one or more images")).to_be_visible()
    m.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(
        str(moon_png(tmp_path / "moon.png"))
    )
    elbo = m.locator('[data-testid="stMetric"]').filter(has_text="ELBO (nats)").first
    expect(elbo).to_be_visible(timeout=SLOW)
    wait_idle(page, SLOW)
    value = elbo.locator('[data-testid="stMetricValue"]').inner_text()
    assert float(value.replace("−", "-")) < 0
    expect(m.locator('[data-testid="stMetric"]').filter(has_text="Percentile among test images")).to_be_visible()
    for img in page.locator(IMAGES).all():
        assert loaded(img) > 0
    assert_clean(page, server)
    screenshot(page, "reconstruct")


def test_train(page, server):
    open_page(page, server.url, "/Train")
    m = main(page)
    name = f"e2e-{int(time.time() * 1000) % 10**9}"
    epochs = m.get_by_role("spinbutton", name="Epochs")
    epochs.fill("1")
    epochs.press("Tab")
    ckpt = m.get_by_role("textbox", name="Checkpoint name")
    ckpt.fill(name)
    ckpt.press("Tab")
    hidden = m.get_by_role("textbox", name="Hidden sizes (mlp widths or conv channels)")
    hidden.fill("64")  # a small network: one epoch in seconds, even on a busy machine
    hidden.press("Tab")
    m.get_by_role("button", name="Start training").click()
    expect(m.get_by_text(f"Started {name}")).to_be_visible(timeout=60_000)
    panel = m.locator('[data-testid="stVerticalBlockBorderWrapper"], [data-testid="stVerticalBlock"]').filter(
        has_text=name
    )
    expect(panel.locator("em", has_text=re.compile(r"^done$")).first).to_be_visible(timeout=SLOW)
    # .first: while the live fragment reruns, Streamlit can briefly hold the old copy too
    expect(m.get_by_text("Test ELBO").first).to_be_visible(timeout=60_000)
    wait_idle(page, SLOW)
    assert (server.trained_dir / f"{name}.safetensors").exists()
    assert_clean(page, server)
    screenshot(page, "train")
