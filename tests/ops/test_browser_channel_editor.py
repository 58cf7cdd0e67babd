"""The channel editor of issue 19 in a real browser (Debian's Chromium through Playwright): an
admin breaks the YAML (the problem shows with its line), fixes it, deploys (the history gains a
version and the running channel filters a message sent over MLLP), then rolls back.

The screenshot is kept as ``test-artifacts/dashboard-19/channel-editor.png``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.ops.helpers import adt, base_url, dashboard, run
from tests.ops.test_browser_dashboard import axe_violations, browser_page, pytestmark, shot
from tests.support import mllp_exchange, source_port, wait_for

__all__ = ["pytestmark"]

TYPO = "filter: {not: {field: PID-3.1, equal: BLOCKED}}\n"
FIXED = "filter: {not: {field: PID-3.1, equals: BLOCKED}}\n"


def test_edit_deploy_and_roll_back_a_channel_in_the_browser(tmp_path: Path) -> None:
    from playwright.async_api import expect

    async def scenario() -> None:
        async with dashboard(tmp_path) as engine:
            path = tmp_path / "channels" / "adt.yaml"
            original = path.read_text()

            async def send(control_id: str, patient: str) -> None:
                await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"),
                                        [adt(control_id, patient)])

            def count(status: str) -> int:
                return engine.store.counts().get("adt", {}).get(status, 0)

            async with browser_page(engine, user="admin") as page:
                await page.goto(base_url(engine) + "/channels/adt")
                await page.click("#channel-yaml-link")
                editor = page.locator("#channel-yaml")
                await expect(editor).to_have_value(original)
                await expect(page.locator(".numbered .gutter")).to_contain_text("1\n2\n3")

                # an error: its line is shown, nothing is deployed
                text = await editor.input_value()
                lines = text.splitlines(keepends=True)
                await editor.fill("".join([lines[0], TYPO, *lines[1:]]))
                await page.click("#yaml-validate")
                problems = page.locator("#yaml-problems")
                await expect(problems).to_contain_text("adt.yaml:2: filter")
                await page.click("#yaml-deploy")
                await expect(problems).to_contain_text("adt.yaml:2: filter")
                await page.screenshot(path=shot("channel-editor-problem.png"))
                assert path.read_text() == original

                # fixed and deployed: a new version, the running channel filters
                fixed = (await editor.input_value()).replace(TYPO.strip(), FIXED.strip())
                await editor.fill(fixed)
                await page.fill("#yaml-comment", "drop test patients")
                await page.click("#yaml-deploy")
                await expect(page.locator("#yaml-deployed")).to_have_text("Deployed version 2.")
                history = page.locator("#yaml-history tbody tr")
                await expect(history).to_have_count(2)
                await expect(history.nth(0)).to_contain_text("drop test patients")
                await expect(history.nth(0)).to_contain_text("(current)")
                assert "equals: BLOCKED" in path.read_text()
                await send("E1", "BLOCKED")
                await wait_for(lambda: count("FILTERED") == 1, 20)
                await send("E2", "PAT2")
                await wait_for(lambda: count("SENT") == 1, 20)

                await page.click("#yaml-history tr[data-version='1'] a")
                await expect(page.locator("#yaml-diff")).to_contain_text(
                    "+filter: {not: {field: PID-3.1, equals: BLOCKED}}")
                await page.screenshot(path=shot("channel-editor.png"), full_page=True)
                assert await axe_violations(page) == []  # WCAG 2.1 A/AA, the diff shown

                # rolled back (one click, confirmed): version 3, the filter gone
                await page.click("#yaml-history tr[data-version='1'] button")
                await expect(page.locator("#yaml-deployed")).to_have_text("Deployed version 3.")
                await expect(history).to_have_count(3)
                await expect(history.nth(0)).to_contain_text("rolled back to version 1")
                assert path.read_text() == original
                await send("E3", "BLOCKED")
                await wait_for(lambda: count("SENT") == 2, 20)
                assert count("FILTERED") == 1

    run(scenario)
