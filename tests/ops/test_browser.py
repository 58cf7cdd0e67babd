"""The dashboard in a real browser: Playwright driving Debian's Chromium (never a download).

Screenshots are kept under ``test-artifacts/`` (git-ignored) for people to look at.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from tests.ops.helpers import PASSWORD, adt, base_url, dashboard, file_channel, run
from tests.support import mllp_exchange, source_port, wait_for

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "dashboard"

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists() and shutil.which("chromium") is None,
                       reason="Debian's Chromium is not installed (apt-get install chromium)"),
    pytest.mark.timeout(120),
]


def test_operator_works_the_dashboard_in_chromium(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    bad = b"MSH|^~\\&|REG|HOSP|ADT|HOSP|20260101||ADT^A01|BAD1|P|2.5\rPID|1||X^^^H^MR\r"

    async def scenario() -> None:
        channel = file_channel(tmp_path, search={"full_text": True})
        channel["destinations"][0]["retry"] = {"attempts": 1, "initial": "10ms", "max": "10ms"}
        async with dashboard(tmp_path, channels=[channel]) as engine, \
                async_playwright() as playwright:
            port = source_port(engine, "adt")
            await asyncio.to_thread(mllp_exchange, port, [adt(f"B{i}", f"PAT{i}")
                                                          for i in range(3)])
            await wait_for(lambda: engine.store.counts()["adt"].get("SENT") == 3)
            # a message the archive cannot take (its path is a folder): an ERROR to look at
            (tmp_path / "out" / "BAD1.hl7").mkdir(parents=True)
            await asyncio.to_thread(mllp_exchange, port, [bad])
            await wait_for(lambda: engine.store.counts()["adt"].get("ERROR") == 1, 30)

            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
                args=ARGS)
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            url = base_url(engine)

            # not logged in: the login form, then back where we wanted to go
            await page.goto(url + "/messages")
            await expect(page.locator("form.login")).to_be_visible()
            await page.fill("input[name=username]", "operator")
            await page.fill("input[name=password]", "wrong password")
            await page.click("button[type=submit]")
            await expect(page.locator("p.error")).to_contain_text("Wrong user name")
            await page.fill("input[name=username]", "operator")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await expect(page.locator("h1")).to_have_text("Messages")
            await page.screenshot(path=str(ARTIFACTS / "messages.png"), full_page=True)

            # overview: counts per channel; live numbers refresh without reloading
            await page.goto(url + "/")
            row = page.locator("tr[data-channel=adt]")
            await expect(row.locator("td.sent")).to_have_text("3")
            await expect(row.locator("td.errored")).to_have_text("1")
            await asyncio.to_thread(mllp_exchange, port, [adt("B9", "PAT9")])
            await expect(row.locator("td.received")).to_have_text("5", timeout=10_000)
            await page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)

            # stop and start from the buttons (with confirmation)
            await row.locator("button.stop").click()
            await expect(row.locator(".state")).to_have_text("stopped")
            assert engine.control.state("adt") == "stopped"
            await page.locator("tr[data-channel=adt] button.start").click()
            await expect(page.locator("tr[data-channel=adt] .state")).to_have_text("started")

            # channel detail: destinations, queue depths, recent errors
            await page.click("text=adt")
            await expect(page.locator("table.destinations")).to_contain_text("archive")
            await expect(page.locator("table.messages")).to_contain_text("BAD1")
            await page.screenshot(path=str(ARTIFACTS / "channel.png"), full_page=True)

            # the browser: filter by status, open the message, fields have their names
            await page.goto(url + "/messages")
            await page.select_option("select[name=status]", "ERROR")
            await page.click("form.filters button[type=submit]")
            rows = page.locator("#message-list tbody tr")
            await expect(rows).to_have_count(1)
            await rows.first.locator("a").first.click()
            await expect(page.locator("h1")).to_contain_text("ERROR")
            hl7 = page.locator("section.stage").first
            await expect(hl7).to_contain_text("Patient Identifier List")
            await expect(hl7).to_contain_text("Message Control ID")
            await page.screenshot(path=str(ARTIFACTS / "message.png"), full_page=True)

            # fix the cause, reprocess from the view
            (tmp_path / "out" / "BAD1.hl7").rmdir()
            await page.click("#reprocess")
            await expect(page.locator("p.notice")).to_contain_text("Queued for reprocessing")
            await wait_for(lambda: engine.store.counts()["adt"].get("ERROR") is None, 30)

            # full-text search (operators) over the indexed messages
            await page.goto(url + "/messages?q=PAT2")
            await expect(page.locator("#message-list tbody tr")).to_have_count(1,
                                                                               timeout=10_000)
            await page.reload()
            await expect(page.locator("#message-list")).to_contain_text("B2")

            # an admin sees who looked at which message
            await page.click("text=Log out")
            await expect(page.locator("form.login")).to_be_visible()
            await page.fill("input[name=username]", "admin")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.goto(url + "/admin/audit?action=view")
            await expect(page.locator("#audit tbody tr").first).to_contain_text("operator")
            await page.screenshot(path=str(ARTIFACTS / "audit.png"), full_page=True)
            await browser.close()

    run(scenario)
