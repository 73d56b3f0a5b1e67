"""The Train page's form in a real browser: Enter in a field never starts a run (issue 22), and a data set
whose files are absent is marked, with Start disabled, before anything is pressed."""

from __future__ import annotations

import time

import pytest
from st_browser import errors_on, expect, fill_train_form, main, open_page, wait_idle

pytestmark = pytest.mark.e2e


def test_enter_in_a_field_starts_no_training_run(page, server):
    open_page(page, server.url, "/Train")
    m = main(page)
    name = f"e2e-enter-{int(time.time() * 1000) % 10**9}"
    fill_train_form(m, "2", name, None, "Enter")
    page.wait_for_timeout(3_000)  # a submitted form would have started the run by now
    wait_idle(page, 60_000)
    expect(m.get_by_text("Started")).to_have_count(0)
    expect(m.get_by_text(name)).to_have_count(0)  # not in the list of runs
    assert not (server.trained_dir / f"{name}.safetensors").exists()
    assert errors_on(page) == []


def test_mnist_without_its_files_is_marked_before_start(page, server):
    open_page(page, server.url, "/Train")
    m = main(page)
    wait_idle(page, 60_000)  # under the full suite's load the page may still be running when it first shows
    option = page.get_by_role("option", name="mnist (files not found)", exact=True)
    for _ in range(3):  # a click that lands while the select box re-renders opens nothing
        m.get_by_role("combobox", name="Data set").click()
        if option.is_visible() or (page.wait_for_timeout(1_000) or option.is_visible()):
            break
    expect(option).to_be_visible(timeout=15_000)
    option.click()
    wait_idle(page, 60_000)
    expect(m.get_by_text("MNIST files not found in")).to_be_visible()
    expect(m.get_by_role("button", name="Start training")).to_be_disabled()
