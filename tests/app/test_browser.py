"""End to end in a real browser: Debian's chromium driven by Playwright (never `playwright install`).

Screenshots go to test-artifacts/app/ (gitignored); `generate.png` is the one the README shows.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
TIMEOUT = 120_000  # ms, a ceiling for a loaded machine; unloaded, each step takes about a second


@pytest.fixture(scope="module")
def page(app_server):
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT)
        page.goto(app_server[1])
        yield page
        browser.close()


def fetch(page, img, decode_image) -> np.ndarray:
    """Download what an <img> shows, through the page's own session, and decode it."""
    response = page.request.get(img.get_attribute("src"))
    assert response.ok, response.status
    return decode_image(response.body())


def toast(page, text):
    """Gradio's own error/warning toast containing `text`."""
    return page.get_by_test_id("toast-body").filter(has_text=text)


def set_number(locator, value):
    locator.fill(str(value))
    locator.press("Tab")


def test_generate_edit_twice_and_step_back(page, artifacts_dir, decode_image, shapes_png):
    # Generate: type a prompt, 128 px, 4 steps.
    page.get_by_label("Prompt").fill("a photo of a red circle")
    set_number(page.locator("#width input"), 128)
    set_number(page.locator("#height input"), 128)
    set_number(page.locator("#gen-steps input[type=number]"), 4)
    page.locator("#generate-btn").click()
    img = page.locator("#gallery img").first
    img.wait_for()
    generated = fetch(page, img, decode_image)
    assert generated.shape == (128, 128, 3) and generated.std() > 0
    assert "seeds 0" in page.locator("#status").inner_text()
    page.screenshot(path=os.path.join(artifacts_dir, "generate.png"), full_page=True)

    # Pick the generated image for editing: the Edit tab opens with it as the original (v0).
    page.locator("#to-edit-btn").click()
    history = page.locator("#history img")
    history.first.wait_for()
    np.testing.assert_array_equal(fetch(page, history.first, decode_image), generated)

    # Edit: upload (a fresh history), edit twice (keep editing feeds each result back), then step back.
    page.locator("#source").get_by_role("button", name="Remove Image").click()
    page.wait_for_function("document.querySelectorAll('#history img').length === 0")
    page.locator("#source input[type=file]").set_input_files(shapes_png)
    history.first.wait_for()
    instruction = page.get_by_label("Instruction")
    for n, text in enumerate(["make the red circle green", "remove the blue square"], start=2):
        set_number(page.locator("#edit-steps input[type=number]"), 3)
        instruction.fill(text)
        page.locator("#edit-btn").click()
        page.wait_for_function(f"document.querySelectorAll('#history img').length === {n}")
        page.get_by_text(f"(from v{n - 2}", exact=False).first.wait_for()
    versions = [fetch(page, history.nth(i), decode_image) for i in range(3)]
    assert versions[0].shape == versions[1].shape == versions[2].shape == (128, 128, 3)
    assert np.abs(versions[1].astype(int) - versions[0]).max() > 0
    assert np.abs(versions[2].astype(int) - versions[1]).max() > 0
    source = page.locator("#source img")
    np.testing.assert_array_equal(fetch(page, source, decode_image), versions[2])  # v2 is being edited
    page.screenshot(path=os.path.join(artifacts_dir, "edit-twice.png"), full_page=True)
    page.screenshot(path=os.path.join(artifacts_dir, "app.png"))  # the README's picture (first screenful)

    page.locator("#back-btn").click()
    page.wait_for_function("(v) => document.querySelector('#source img')?.src.includes(v)",
                           arg=os.path.basename(history.nth(1).get_attribute("src")).split("-")[0])
    np.testing.assert_array_equal(fetch(page, source, decode_image), versions[1])
    with page.expect_download() as download:
        page.locator("#download-btn").click()
    with open(download.value.path(), "rb") as f:
        np.testing.assert_array_equal(decode_image(f.read()), versions[1])

    history.nth(0).click()  # any earlier version: back to the original
    page.wait_for_function("(v) => document.querySelector('#source img')?.src.includes(v)",
                           arg=os.path.basename(history.nth(0).get_attribute("src")).split("-")[0])
    np.testing.assert_array_equal(fetch(page, source, decode_image), versions[0])
    page.screenshot(path=os.path.join(artifacts_dir, "step-back.png"), full_page=True)


def test_bad_input_shows_a_message(page, artifacts_dir, tmp_path):
    page.get_by_role("tab", name="Edit").click()
    bad = tmp_path / "holiday.png"
    bad.write_bytes(b"this is not a picture")
    page.locator("#source input[type=file]").set_input_files(str(bad))
    message = toast(page, "not an image file (unrecognised format): holiday.png")
    message.wait_for()
    page.screenshot(path=os.path.join(artifacts_dir, "bad-upload.png"), full_page=True)
    assert "Traceback" not in page.content()

    page.get_by_role("tab", name="Generate").click()
    set_number(page.locator("#width input"), 4096)
    page.locator("#generate-btn").click()
    toast(page, "width 4096 is too large").wait_for()
    page.screenshot(path=os.path.join(artifacts_dir, "too-large.png"), full_page=True)

    # The model picker takes a typed folder; a wrong one is a message, and the page keeps working.
    picker = page.get_by_role("combobox", name="Model")
    picker.fill("/no/such/model")
    picker.press("Enter")
    toast(page, "unknown model '/no/such/model'").wait_for()
