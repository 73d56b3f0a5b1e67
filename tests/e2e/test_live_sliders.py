"""Latent sliders decoded in a real browser (headless Debian Chromium, driven by Playwright): the image
follows a mouse drag before the button is released, matches torch's decode, follows arrow keys and the
2-D pad, and stays in view. One Streamlit server serves the module (conftest.py)."""

from __future__ import annotations

import re

import pytest
import torch
from st_browser import ROOT, errors_on, expect, main, open_page, wait_idle
from st_live import (
    PAD,
    PAD_IMAGE,
    PAD_PLANE,
    SLIDERS,
    SLIDERS_CANVAS,
    SentCounter,
    drag,
    picture,
    pixels,
    thumb_at,
    wait_painted,
)

pytestmark = pytest.mark.e2e

SERVER_CODE = '[data-testid="stCaptionContainer"]'


def open_sliders(page, server) -> SentCounter:
    """The Latent sliders page (moons-vae) with its sliders' first picture painted."""
    sent = SentCounter(page)
    open_page(page, server.url, "/Latent_sliders")
    wait_painted(page, SLIDERS_CANVAS)
    return sent


def server_says(page, text: str) -> None:
    """Until the server's caption shows ``text`` (a rerun after a release has finished)."""
    expect(main(page).locator(SERVER_CODE).filter(has_text="On the server")).to_contain_text(text, timeout=60_000)
    wait_idle(page)


def first_slider(page):
    return page.locator(f"{SLIDERS} input[type=range]").first


def clean(page, server) -> None:
    assert errors_on(page) == []
    assert "Traceback" not in server.log(tail=200_000), server.log()
    assert page.js_errors == []


def test_a_drag_repaints_before_release_and_the_code_arrives_on_release(page, server):
    sent = open_sliders(page, server)
    name = first_slider(page).get_attribute("aria-label")
    j = int(re.match(r"z(\d+)", name).group(1))
    x0, y0 = thumb_at(page, f"{SLIDERS} input[type=range]", 0.0, -4.0, 4.0)
    x1 = thumb_at(page, f"{SLIDERS} input[type=range]", 2.4, -4.0, 4.0)[0]
    seen = drag(page, (x0, y0), (x1, y0), SLIDERS_CANVAS, steps=20, duration_s=1.0, sent=sent)
    assert seen.changes >= 10, seen.changed  # the picture follows the mouse
    assert seen.sent_before_release == 0  # ... and the server hears nothing until release
    value = float(page.locator(f"{SLIDERS} output").first.inner_text().replace("−", "-"))
    assert value == pytest.approx(2.4, abs=0.1)
    server_says(page, f"z{j} = {value:+.2f}")
    clean(page, server)


def test_the_picture_is_torchs_decode_within_8_bit_rounding(page, server):
    open_sliders(page, server)
    m = main(page)
    m.get_by_text("encoding of a test image").click()
    wait_idle(page)
    box = m.locator('[data-testid="stNumberInput"] input')
    box.fill("3")
    box.press("Enter")
    wait_idle(page)

    from vae.checkpoint import load_checkpoint
    from vae.data import load_moons

    model = load_checkpoint(ROOT / "checkpoints" / "moons-vae.safetensors").model
    with torch.no_grad():
        z = model.encode(load_moons().test_x[3:4]).mean.clamp(-4, 4)
        want = (model.decode(z)[0, 0] * 255).round()
    first = int(first_slider(page).get_attribute("aria-label").split()[0][1:]) - 1  # labels are z1 ... zD
    shown = f"{z[0, first]:+.2f}".replace("-", "−")
    expect(page.locator(f"{SLIDERS} output").first).to_have_text(shown)  # re-mounted at the new start
    wait_painted(page, SLIDERS_CANVAS)
    got = torch.tensor(pixels(page, SLIDERS_CANVAS, 28, 28), dtype=torch.float32)
    assert (got - want).abs().max() <= 1, (got - want).abs().max()
    assert want.std() > 20  # a real picture, not a blank one
    # Each slider shows q(z|x)'s mu +- sigma band behind its track, and a draw moves the sliders into it.
    bands = page.locator(f"{SLIDERS} .band")
    expect(bands).to_have_count(model.latent_dim)
    track = page.locator(f"{SLIDERS} .posterior").first.bounding_box()
    band = bands.first.bounding_box()
    with torch.no_grad():
        sigma = model.encode(load_moons().test_x[3:4]).std[0, first]
    lo = max(float(z[0, first] - sigma), -4.0)
    assert band["x"] == pytest.approx(track["x"] + (lo + 4) / 8 * track["width"], abs=2)
    outputs = page.locator(f"{SLIDERS} output")
    before = outputs.all_inner_texts()
    m.get_by_role("button", name="Draw z ~ q(z|x)").click()
    expect(outputs).not_to_have_text(before)  # re-mounted at the draw
    wait_idle(page)
    clean(page, server)


def test_arrow_keys_repaint_and_send_the_code(page, server):
    open_sliders(page, server)
    slider = first_slider(page)
    j = int(slider.get_attribute("aria-label").split()[0][1:])
    before = picture(page, SLIDERS_CANVAS)
    n = wait_painted(page, SLIDERS_CANVAS)
    slider.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    wait_painted(page, SLIDERS_CANVAS, n)
    server_says(page, f"z{j} = +0.10")
    assert picture(page, SLIDERS_CANVAS) != before
    expect(page.locator(f"{SLIDERS} output").first).to_have_text("+0.10")
    clean(page, server)


def test_the_pad_drags_a_point_and_the_sliders_follow(page, server):
    sent = open_sliders(page, server)
    plane = page.locator(PAD_PLANE)
    plane.scroll_into_view_if_needed()
    wait_painted(page, PAD_IMAGE)
    box = plane.bounding_box()
    centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    corner = (box["x"] + 0.8 * box["width"], box["y"] + 0.2 * box["height"])
    seen = drag(page, centre, corner, PAD_IMAGE, steps=10, duration_s=0.5, sent=sent)
    assert seen.changes >= 5, seen.changed
    assert seen.sent_before_release == 0
    readout = page.locator(f"{PAD} output").inner_text().replace("−", "-")
    (i, j, a, b) = re.match(r"\(z(\d+), z(\d+)\) = \(([-+]\d\.\d\d), ([-+]\d\.\d\d)\)", readout).groups()
    assert float(a) == pytest.approx(2.4, abs=0.2) and float(b) == pytest.approx(2.4, abs=0.2)
    server_says(page, f"z{i} = {a}, z{j} = {b}")
    expect(page.locator(f"{SLIDERS} output").first).to_have_text(a.replace("-", "−"))  # the sliders moved too
    clean(page, server)


def test_the_image_stays_in_view_while_the_sliders_scroll(page, server):
    page.set_viewport_size({"width": 1200, "height": 560})
    open_sliders(page, server)
    page.locator(f"{SLIDERS} summary").click()  # unfold the inactive dimensions: more sliders than fit
    last = page.locator(f"{SLIDERS} input[type=range]").last
    last.evaluate("e => e.scrollIntoView({block: 'end'})")  # the lowest slider at the bottom of the window
    box = last.bounding_box()
    assert 0 < box["y"] < 560 and page.locator(f"{SLIDERS} input[type=range]").first.bounding_box()["y"] < 0
    canvas = page.locator(SLIDERS_CANVAS).bounding_box()
    assert 0 <= canvas["y"] and canvas["y"] + canvas["height"] <= 560, canvas
    clean(page, server)
