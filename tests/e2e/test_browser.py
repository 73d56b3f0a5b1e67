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
from st_browser import (
    ROOT,
    errors_on,
    expect,
    fill_train_form,
    focus_slider,
    image_src,
    main,
    open_page,
    screenshot,
    wait_idle,
    wait_src_change,
)
from st_live import isolated_point

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
    """The live sliders paint in the browser (tests/e2e/test_live_sliders.py drives them); the
    traversals are decoded on the server and follow the Steps slider."""
    from st_live import PAD_IMAGE, SLIDERS_CANVAS, wait_painted

    open_page(page, server.url, "/Latent_sliders")
    m = main(page)
    wait_painted(page, SLIDERS_CANVAS)
    expect(page.locator(".vae-latent_sliders input[type=range]").first).to_be_visible()
    expect(m.get_by_text("decoded mean of p(x|z)").first).to_be_visible()
    strip = m.locator('[data-testid="stImage"]').filter(has_text="-3.0 · ").locator("img")
    expect(strip).to_be_visible()
    assert loaded(strip) > 200
    old = image_src(strip)
    thumb = focus_slider(page, label="Steps")
    for _ in range(4):
        page.keyboard.press("ArrowLeft")
    wait_src_change(page, IMAGES, old, index=0)  # the strip is the page's first server image
    wait_idle(page)
    assert float(thumb.get_attribute("aria-valuenow") or thumb.input_value()) == 5
    expect(m.get_by_text("-3.0 · -1.5 · +0.0 · +1.5 · +3.0")).to_be_visible()
    wait_painted(page, PAD_IMAGE)
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
    # The moon argument: the VAE's and the AE's latent planes, drawn by plotly, and the step table.
    plane = m.locator('[data-testid="stPlotlyChart"]').last
    plane.scroll_into_view_if_needed()
    expect(plane.locator(".gtitle, .annotation-text").filter(has_text="VAE · moons-vae")).to_have_count(1)
    expect(plane.locator(".annotation-text").filter(has_text="AE · moons-ae")).to_have_count(1)
    expect(plane.locator(".subplot")).to_have_count(2)
    assert plane.locator(".scatterlayer .trace").count() >= 2 * 9  # eight phases and the path, per panel
    expect(m.get_by_text(re.compile(r"VAE · moons-vae: \d+ of 8 in-between frames fit a moon"))).to_be_visible()
    expect(m.locator('[data-testid="stDataFrame"]')).to_be_visible()
    assert_clean(page, server)
    screenshot(page, "interpolate")


@pytest.mark.skipif(not (ROOT / "pages" / "4_Latent_map.py").exists(), reason="pages/4_Latent_map.py is missing")
def test_latent_map(page, server):
    open_page(page, server.url, "/Latent_map")
    m = main(page)
    expect(m.get_by_text("PCA of 16-D posterior means")).to_be_visible()
    expect(m.get_by_text("Click a point on the map to decode it")).to_be_visible()
    view = page.locator(".vae-latent_map")
    view.locator("canvas.over").scroll_into_view_if_needed()
    page.locator(".vae-latent_map[data-ready='1']").wait_for(state="attached", timeout=60_000)
    target = isolated_point(page)
    assert target is not None and target["gap"] >= 4, target
    page.mouse.move(target["x"], target["y"])
    page.mouse.click(target["x"], target["y"])
    caption = m.locator('[data-testid="stImageCaption"]').filter(has_text=f"original #{target['i']} ·")
    expect(caption).to_be_visible(timeout=60_000)
    wait_idle(page)
    expect(m.locator('[data-testid="stImageCaption"]').filter(has_text="decoding of μ(x)")).to_be_visible()
    expect(m.get_by_text("nearest test images in latent space")).to_be_visible()
    assert m.get_by_role("spinbutton").first.input_value() == str(target["i"])
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
    expect(m.locator('[data-testid="stMetric"]').filter(has_text="S(x) percentile among test images")).to_be_visible()
    verdict = re.compile(r"Typical for this model|Out of distribution")  # the input-complexity test's words
    expect(m.locator('[data-testid="stAlert"]').filter(has_text=verdict).first).to_be_visible()
    for img in page.locator(IMAGES).all():
        assert loaded(img) > 0
    assert_clean(page, server)
    screenshot(page, "reconstruct")


def test_train(page, server):
    open_page(page, server.url, "/Train")
    m = main(page)
    name = f"e2e-{int(time.time() * 1000) % 10**9}"
    fill_train_form(m, "1", name, "64", "Tab")  # a small network: one epoch in seconds, even on a busy machine
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


def test_mixtures(page, server):
    """The Mixtures page needs no checkpoint: both models' densities and samples are drawn, and K refits EM."""
    open_page(page, server.url, "/Mixtures", timeout=SLOW)
    m = main(page)
    # Short headings, each with its formula rendered as LaTeX beneath it (issue 22: notation as in the panels).
    expect(m.get_by_role("heading", name="3 Gaussians", exact=True)).to_be_visible()
    expect(m.get_by_role("heading", name="Infinitely many: one per z", exact=True)).to_be_visible()
    expect(m.locator(".katex").first).to_be_visible()
    charts = m.locator('[data-testid="stPlotlyChart"]')
    expect(charts).to_have_count(5)  # two densities, the decoder, two sample histograms
    for chart in charts.all():
        chart.scroll_into_view_if_needed()
        expect(chart.locator(".main-svg").first).to_be_visible()
    focus_slider(page, "K, the mixture's components")
    page.keyboard.press("ArrowRight")
    expect(m.get_by_role("heading", name="4 Gaussians", exact=True)).to_be_visible(timeout=SLOW)
    wait_idle(page)
    assert_clean(page, server)
    screenshot(page, "mixtures")
