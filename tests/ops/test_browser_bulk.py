"""Bulk select on the message list in a real browser (Debian's Chromium through Playwright):
tick rows (mouse and keyboard), reprocess them after a confirmation, export exactly those, and
no bulk controls for a viewer. Screenshots: ``test-artifacts/dashboard-19/bulk-*.png``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.ops.helpers import adt, base_url, dashboard, run
from tests.ops.test_browser_dashboard import axe_violations, browser_page, pytestmark, shot
from tests.support import mllp_exchange, source_port, wait_for

__all__ = ["pytestmark"]  # Chromium or skip, and the time limit: as the dashboard's tests


def test_bulk_select_reprocess_and_export_on_the_messages_page(tmp_path: Path) -> None:
    from playwright.async_api import expect

    async def scenario() -> None:
        async with dashboard(tmp_path) as engine:
            port = source_port(engine, "adt")
            await asyncio.to_thread(mllp_exchange, port, [adt(f"K{i}", f"PAT{i}")
                                                          for i in range(4)])
            await wait_for(lambda: engine.store.counts()["adt"].get("SENT") == 4, 30)
            ids = {m.control_id: m.id for m in engine.store.search(channel="adt")}
            picked = sorted([ids["K1"], ids["K2"]])
            web = engine.service("dashboard").app.state.web
            url = base_url(engine)
            async with browser_page(engine, accept_downloads=True) as page:
                questions: list[str] = []
                page.on("dialog", lambda dialog: questions.append(dialog.message))
                await page.goto(url + "/messages?channel=adt")
                rows = page.locator("#message-list tbody tr")
                await expect(rows).to_have_count(4)
                count = page.locator("#bulk [data-bulk-count]")
                reprocess = page.get_by_role("button", name="Reprocess selected")
                export = page.get_by_role("button", name="Export selected")
                everything = page.get_by_role("checkbox", name="Select all messages on this page")
                await expect(count).to_have_text("0 selected")
                await expect(reprocess).to_be_disabled()
                await expect(export).to_be_disabled()

                # the whole page at once, and back
                await everything.check()
                await expect(count).to_have_text("4 selected")
                await expect(page.locator("#message-list input[name=ids]:checked")).to_have_count(4)
                await everything.uncheck()
                await expect(count).to_have_text("0 selected")

                # two rows: one with the mouse, one from the keyboard (focus, Space)
                await page.get_by_role("checkbox", name=f"Select message {ids['K1']}").check()
                await page.get_by_role("checkbox", name=f"Select message {ids['K2']}").focus()
                await page.keyboard.press("Space")
                await expect(count).to_have_text("2 selected")
                assert await everything.evaluate("box => box.indeterminate")
                await expect(reprocess).to_be_enabled()

                # a new message while rows are ticked: the list holds still (live updates wait)
                await page.locator("h1").click()  # the focus out of the list
                await asyncio.to_thread(mllp_exchange, port, [adt("K9", "PAT9")])
                await wait_for(lambda: engine.store.counts()["adt"].get("SENT") == 5, 30)
                await asyncio.sleep(6)  # more than the list's 5 s
                await expect(rows).to_have_count(4)
                await expect(page.locator("#message-list input[name=ids]:checked")).to_have_count(2)
                await page.screenshot(path=shot("bulk-select.png"),
                                      clip={"x": 0, "y": 0, "width": 1400, "height": 400})
                assert await axe_violations(page) == []  # WCAG 2.1 A/AA, rows ticked

                # export the ticked ones: exactly those two, raw HL7 then NDJSON
                async with page.expect_download() as waiting:
                    await export.click()
                download = await waiting.value
                assert download.suggested_filename == "messages.hl7"
                saved = tmp_path / "selected.hl7"
                await download.save_as(saved)
                assert saved.read_bytes() == b"".join(
                    adt(c, f"PAT{c[1]}").rstrip(b"\r") + b"\r\n" for c in ("K2", "K1"))
                await page.get_by_label("Format").select_option("ndjson")
                await expect(page.locator("#bulk a[data-export-all]")).to_have_attribute(
                    "href", "/api/messages/export?channel=adt&limit=100000&format=ndjson")
                async with page.expect_download() as waiting:
                    await export.click()
                saved = tmp_path / "selected.ndjson"
                await (await waiting.value).save_as(saved)
                lines = [json.loads(line) for line in saved.read_text().splitlines()]
                assert sorted(m["id"] for m in lines) == picked
                assert all(m["raw"].startswith("MSH|") for m in lines)
                exported = web.audit.list(action="export")
                assert sorted(a["message_id"] for a in exported) == sorted(picked * 2)
                assert not questions  # exporting asks nothing

                # reprocess them: asked first, then the result on its page
                await reprocess.click()
                await expect(page.locator("#bulk-result")).to_have_text(
                    "2 of 2 messages reprocessed.")
                assert questions == ["Reprocess 2 selected message(s) through their channels "
                                     "again?"]
                await page.screenshot(path=shot("bulk-reprocessed.png"), full_page=True)
                assert await axe_violations(page) == []
                audited = web.audit.list(action="reprocess")
                assert sorted(a["message_id"] for a in audited) == picked
                assert {a["username"] for a in audited} == {"operator"}

                def reprocessed() -> bool:
                    return all(any(e[1] == "reprocess" for e in engine.store.get(i).events)
                               and engine.store.get(i).status == "SENT" for i in picked)
                await wait_for(reprocessed, 30)
                assert not any(e[1] == "reprocess" for e in engine.store.get(ids["K0"]).events)
                await page.click("#bulk-back")
                assert page.url == url + "/messages?channel=adt"
                await expect(rows).to_have_count(5)

            # a viewer: no boxes, no bulk buttons, and the action refused all the same
            async with browser_page(engine, user="viewer") as page:
                await page.goto(url + "/messages?channel=adt")
                await expect(page.locator("#message-list tbody tr")).to_have_count(5)
                await expect(page.get_by_role("button", name="Reprocess selected")).to_have_count(0)
                await expect(page.locator("#message-list input[type=checkbox]")).to_have_count(0)
                csrf = await page.locator("meta[name=csrf-token]").get_attribute("content")
                answer = await page.request.post(url + "/messages/reprocess", form={
                    "ids": str(picked[0]), "csrf_token": csrf or ""})
                assert answer.status == 403
            assert len(web.audit.list(action="reprocess")) == 2

    run(scenario)
