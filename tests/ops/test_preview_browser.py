"""The channel preview in a real browser (Debian's Chromium through Playwright): an admin opens
the preview from the channel page, edits the deployed YAML and sees what would change.

The screenshot is kept under ``test-artifacts/dashboard/`` like the other dashboard tests'.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.engine.preview_scenario import NAME, deployed, edited_yaml, store_traffic
from tests.ops.helpers import PASSWORD, base_url, dashboard, run
from tests.ops.test_browser import ARGS, ARTIFACTS, CHROMIUM
from tests.support import MllpReceiver

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists() and shutil.which("chromium") is None,
                       reason="Debian's Chromium is not installed (apt-get install chromium)"),
    pytest.mark.timeout(120),
]


def test_admin_previews_a_change_from_the_channel_page(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    async def scenario() -> None:
        with MllpReceiver() as receiver:
            async with dashboard(tmp_path, [deployed(tmp_path, receiver.port)]) as engine, \
                    async_playwright() as playwright:
                await store_traffic(engine, receiver)
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM if Path(CHROMIUM).exists()
                    else shutil.which("chromium"), args=ARGS)
                page = await browser.new_page(viewport={"width": 1300, "height": 900})
                url = base_url(engine)
                await page.goto(f"{url}/channels/{NAME}")
                await page.fill("input[name=username]", "admin")
                await page.fill("input[name=password]", PASSWORD)
                await page.click("button[type=submit]")
                await page.get_by_role("button", name="Preview a change").click()
                textarea = page.get_by_label("Channel YAML")
                await expect(textarea).to_have_value(  # the deployed YAML, ready to edit
                    re.compile(r"\| upper \}\}"))
                await textarea.fill(edited_yaml(tmp_path, receiver.port))
                await page.get_by_role("button", name="Preview against stored traffic").click()
                await expect(page.locator("#preview-summary")).to_have_text(
                    "5 messages, 1 unchanged, 2 changed, 1 newly filtered, "
                    "1 no longer filtered, 0 errors")
                await expect(page.locator("details.newly-filtered summary")).to_contain_text(
                    "MSH-10 M3")
                await expect(page.locator("pre.diff span.add").first).to_contain_text(
                    "smith^GIVEN")
                await page.screenshot(path=str(ARTIFACTS / "preview.png"), full_page=True)
                await browser.close()
                assert len(receiver.messages) == 2  # what the engine sent, nothing more

    run(scenario)
