"""The dashboard of issue 19 in a real browser (Debian's Chromium through Playwright, never a
download): charts, raw HL7 and stage diffs, delivery errors in the lists, local times, live
updates, accessible controls.

Screenshots are kept under ``test-artifacts/dashboard-19/`` at the root of the checkout
(git-ignored); each test prints where.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.ops.helpers import PASSWORD, adt, base_url, dashboard, file_channel, run
from tests.support import mllp_exchange, source_port, wait_for

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard-19"

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists() and shutil.which("chromium") is None,
                       reason="Debian's Chromium is not installed (apt-get install chromium)"),
    pytest.mark.timeout(120),
]


def two_destinations(tmp_path: Path) -> dict[str, Any]:
    """``archive`` writes files; ``broken`` cannot (its folder is a file), so it fails."""
    (tmp_path / "not-a-folder").write_text("a file where a folder should be")
    channel = file_channel(tmp_path)
    channel["destinations"].append({
        "name": "broken", "type": "file",
        "path": str(tmp_path / "not-a-folder" / "{{ msg['MSH-10'] }}.hl7"),
        "retry": {"attempts": 1, "initial": "10ms", "max": "10ms"}})
    return channel


@contextlib.asynccontextmanager
async def browser_page(engine: Any, user: str = "operator",
                       **context: Any) -> AsyncIterator[Any]:
    """A logged-in page; CSP violations reported by the browser fail the test."""
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
            args=ARGS)
        ctx = await browser.new_context(viewport={"width": 1400, "height": 900}, **context)
        page = await ctx.new_page()
        violations: list[str] = []
        page.on("console", lambda m: violations.append(m.text)
                if "Content Security Policy" in m.text else None)
        page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        await page.goto(base_url(engine) + "/login")
        await page.fill("input[name=username]", user)
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await expect(page.locator("header nav")).to_be_visible()
        try:
            yield page
        finally:
            await browser.close()
        assert not violations, violations


def shot(name: str) -> str:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    print(f"screenshot: {path}")
    return str(path)


def test_charts_of_messages_queues_and_destinations(tmp_path: Path) -> None:
    from playwright.async_api import expect

    async def scenario() -> None:
        async with dashboard(tmp_path, channels=[two_destinations(tmp_path)]) as engine:
            sampler = engine.service("sampler")
            sampler.seconds = 0.3  # charts get points quickly
            await asyncio.sleep(2.2)  # the sampler's first (2 s) wait ends
            port = source_port(engine, "adt")
            await asyncio.to_thread(mllp_exchange, port, [adt(f"C{i}", f"PAT{i}")
                                                          for i in range(4)])
            await wait_for(lambda: engine.store.counts()["adt"].get("ERROR") == 4, 30)
            await asyncio.sleep(1)
            url = base_url(engine)
            async with browser_page(engine) as page:
                answer = await page.request.get(url + "/api/charts?channel=adt")
                data = (await answer.json())["channels"]["adt"]
                assert sum(data["received"]) > 0
                assert sum(data["destinations"]["archive"]["sent"]) > 0
                assert sum(data["destinations"]["broken"]["failed"]) > 0
                assert any(v is not None for v in data["queued"])

                await page.goto(url + "/channels/adt")
                for chart in ("#chart-messages", "#chart-queue", "#chart-destinations"):
                    await expect(page.locator(f"{chart} canvas")).to_be_visible()
                    await expect(page.locator(f"{chart}[data-ready]")).to_have_count(1)
                legend = page.locator("#chart-messages .u-legend")
                for key in ("received", "sent", "filtered", "errored"):
                    await expect(legend).to_contain_text(key)
                destinations = page.locator("#chart-destinations .u-legend")
                await expect(destinations).to_contain_text("archive sent")
                await expect(destinations).to_contain_text("broken failed")
                await page.screenshot(path=shot("channel-charts.png"), full_page=True)

                # the charts move without reloading: more messages, a new point counts them
                before = await page.locator("#chart-messages").get_attribute("data-total")
                await asyncio.to_thread(mllp_exchange, port, [adt("C9", "PAT9")])
                await expect(page.locator("#chart-messages")).not_to_have_attribute(
                    "data-total", before or "", timeout=15_000)

                await page.goto(url + "/")
                for chart in ("#chart-all-messages", "#chart-all-queue"):
                    await expect(page.locator(f"{chart} canvas")).to_be_visible()
                await expect(page.locator("#chart-all-queue .u-legend")).to_contain_text("adt")
                await page.screenshot(path=shot("overview-charts.png"), full_page=True)

    run(scenario)
