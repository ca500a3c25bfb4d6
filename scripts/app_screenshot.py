"""The README's app picture, taken with a real model: generate, send to Edit, edit, screenshot.

    python scripts/app_screenshot.py [--model shapes-mobile] [--out docs/images/app.png]

Drives the app in Debian's headless chromium through Playwright, as tests/app/test_browser.py does, but on a
shipped model instead of the tests' random-weight one, at the app's defaults (the model's resolution and
steps, seed 0).
"""

from __future__ import annotations

import argparse
import os

CHROMIUM = "/usr/bin/chromium"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shapes-mobile", help="shipped name or model folder")
    parser.add_argument("--prompt", default="a photo of a red circle left of a blue square")
    parser.add_argument("--instruction", default="make the red circle green")
    parser.add_argument("--out", default="docs/images/app.png")
    args = parser.parse_args()
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install chromium")
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    from playwright.sync_api import sync_playwright

    from dreamlite.app.engine import Engine
    from dreamlite.app.ui import build_app, launch

    demo = build_app(Engine(args.model))
    url = launch(demo, host="127.0.0.1", port=None, block=False)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(300_000)
            page.goto(url)
            page.get_by_label("Prompt").fill(args.prompt)
            page.locator("#generate-btn").click()
            page.locator("#gallery img").first.wait_for()
            page.locator("#to-edit-btn").click()
            page.locator("#history img").first.wait_for()
            page.get_by_label("Instruction").fill(args.instruction)
            page.locator("#edit-btn").click()
            page.wait_for_function("document.querySelectorAll('#history img').length === 2")
            page.get_by_text("(from v0", exact=False).first.wait_for()
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            page.screenshot(path=args.out)
            browser.close()
    finally:
        demo.close()
        demo.version_store.cleanup()
    print(args.out)


if __name__ == "__main__":
    main()
