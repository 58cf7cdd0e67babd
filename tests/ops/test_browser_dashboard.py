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
            # a few more bursts, so the lines have a shape to look at
            sent = 4
            for burst in (2, 6, 3):
                await asyncio.sleep(0.8)
                await asyncio.to_thread(mllp_exchange, port, [
                    adt(f"C{sent + i}", f"PAT{i}") for i in range(burst)])
                sent += burst
            await wait_for(lambda: engine.store.counts()["adt"].get("ERROR") == sent, 30)
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
                # the top of it (the README's picture: docs/dashboard-channel.png)
                await page.screenshot(path=shot("channel-charts-top.png"),
                                      clip={"x": 0, "y": 0, "width": 1400, "height": 760})

                # the charts move without reloading: more messages, a new point counts them
                before = await page.locator("#chart-messages").get_attribute("data-total")
                await asyncio.to_thread(mllp_exchange, port, [adt("C99", "PAT9")])
                await expect(page.locator("#chart-messages")).not_to_have_attribute(
                    "data-total", before or "", timeout=15_000)

                await page.goto(url + "/")
                for chart in ("#chart-all-messages", "#chart-all-queue"):
                    await expect(page.locator(f"{chart} canvas")).to_be_visible()
                await expect(page.locator("#chart-all-queue .u-legend")).to_contain_text("adt")
                await page.screenshot(path=shot("overview-charts.png"), full_page=True)

    run(scenario)


def test_raw_hl7_copied_downloaded_and_the_transform_diffed(tmp_path: Path) -> None:
    from playwright.async_api import expect

    async def scenario() -> None:
        channel = file_channel(tmp_path, transform=[
            {"set": {"field": "PV1-2", "value": "O"}},
            {"set": {"field": "PID-5.1", "value": "CHANGEDNAME"}}])
        async with dashboard(tmp_path, channels=[channel]) as engine:
            await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"),
                                    [adt("D1", "PAT7")])
            await wait_for(lambda: engine.store.counts()["adt"].get("SENT") == 1, 30)
            message_id = engine.store.search(channel="adt")[0].id
            url = base_url(engine)
            async with browser_page(engine, permissions=["clipboard-read",
                                                         "clipboard-write"]) as page:
                await page.goto(f"{url}/messages/{message_id}")
                raw = page.locator("#raw-hl7")
                await expect(raw).to_contain_text("PID|1||PAT7^^^HOSP^MR||FAMILYNAME^GIVEN")

                # copy: the clipboard holds the message, one segment a line
                await page.click("#copy-raw")
                await expect(page.locator(".raw-actions [role=status]")).to_have_text("Copied.")
                copied = await page.evaluate("navigator.clipboard.readText()")
                assert copied.splitlines()[0].startswith("MSH|^~\\&|REG|HOSP")
                assert "PV1|1|I|WARD^101^1" in copied.splitlines()

                # over plain HTTP to another host there is no clipboard API: the text is
                # selected (and copied the old way)
                await page.reload()
                await page.evaluate("Object.defineProperty(navigator, 'clipboard', "
                                    "{value: undefined})")
                await page.click("#copy-raw")
                await expect(page.locator(".raw-actions [role=status]")).not_to_be_empty()
                selected = await page.evaluate("window.getSelection().toString()")
                assert selected.splitlines()[2].startswith("PID|1||PAT7")

                # download: the exact bytes received, as a file, audited as a PHI view
                async with page.expect_download() as waiting:
                    await page.click("#download-raw")
                download = await waiting.value
                assert download.suggested_filename == f"message-{message_id}.hl7"
                saved = tmp_path / "downloaded.hl7"
                await download.save_as(saved)
                assert saved.read_bytes() == adt("D1", "PAT7")
                views = engine.service("dashboard").app.state.web.audit.list(
                    action="view", message_id=message_id)
                assert any(v["detail"] == "dashboard raw download" and
                           v["username"] == "operator" for v in views), views

                # the transform's diff: the changed fields of PID and PV1, nothing else
                transform = page.locator("section.diff").first
                await expect(transform.locator("h3")).to_have_text("Raw → Transformed")
                await expect(transform.locator("tr.removed del")).to_have_text(
                    ["FAMILYNAME^GIVEN", "I"])
                await expect(transform.locator("tr.added ins")).to_have_text(
                    ["CHANGEDNAME^GIVEN", "O"])
                await expect(transform.locator("tr.same")).to_have_count(2)  # MSH, EVN
                sent = page.locator("section.diff").nth(1)
                await expect(sent.locator("h3")).to_have_text("Transformed → Sent to archive")
                await expect(sent).to_contain_text("No change.")
                await page.screenshot(path=shot("message-raw-and-diff.png"), full_page=True)

            # a viewer gets neither the raw text nor the file
            async with browser_page(engine, user="viewer") as page:
                await page.goto(f"{url}/messages/{message_id}")
                await expect(page.locator("#raw-hl7")).to_have_count(0)
                answer = await page.request.get(f"{url}/messages/{message_id}/raw")
                assert answer.status == 403

    run(scenario)


def test_delivery_errors_destination_statistics_and_a_blocked_ordered_destination(
        tmp_path: Path) -> None:
    from playwright.async_api import expect

    async def scenario() -> None:
        ordered = {"name": "orders", "source": {"type": "mllp", "host": "127.0.0.1", "port": 0},
                   "destinations": [{
                       "name": "lis", "type": "file", "ordered": True,
                       "path": str(tmp_path / "not-a-folder" / "{{ msg['MSH-10'] }}.hl7"),
                       "retry": {"attempts": 1, "initial": "10ms", "max": "200ms"}}]}
        async with dashboard(tmp_path, channels=[two_destinations(tmp_path), ordered]) as engine:
            await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"),
                                    [adt("E1", "PAT1"), adt("E2", "PAT2")])
            await asyncio.to_thread(mllp_exchange, source_port(engine, "orders"),
                                    [adt("O1", "PAT3")])
            await wait_for(lambda: engine.store.counts()["adt"].get("ERROR") == 2, 30)
            await wait_for(lambda: engine.runtimes["orders"].destination_state()["lis"]
                           ["blocked"] is True, 30)
            failed = engine.store.search(channel="adt", status="ERROR")
            assert all(not m.error for m in failed)  # the message's own error says nothing
            url = base_url(engine)
            async with browser_page(engine) as page:
                # the list shows which destination failed and why
                await page.goto(url + "/messages?channel=adt&status=ERROR")
                rows = page.locator("#message-list tbody tr")
                await expect(rows).to_have_count(2)
                for i in range(2):
                    cell = rows.nth(i).locator(".delivery-error")
                    await expect(cell).to_have_count(1)
                    await expect(cell).to_contain_text("broken:")
                    await expect(cell).to_contain_text("not-a-folder")
                await page.screenshot(path=shot("messages-delivery-errors.png"), full_page=True)

                # the channel page: per destination sent, failed, open deliveries
                await page.goto(url + "/channels/adt")
                archive = page.locator("table.destinations tr[data-destination=archive]")
                broken = page.locator("table.destinations tr[data-destination=broken]")
                await expect(archive.locator("td.sent")).to_have_text("2")
                await expect(archive.locator("td.failed")).to_have_text("0")
                await expect(broken.locator("td.sent")).to_have_text("0")
                await expect(broken.locator("td.failed")).to_have_text("2")
                await expect(broken.locator("td.in-error")).to_have_text("2")
                await expect(broken.locator("td.flow")).to_contain_text("flowing")
                await expect(page.locator("table.messages .delivery-error")).to_have_count(2)
                await page.screenshot(path=shot("channel-destinations.png"), full_page=True)

                # an ordered destination that cannot send holds its queue and says so
                await page.goto(url + "/channels/orders")
                lis = page.locator("table.destinations tr[data-destination=lis]")
                await expect(lis).to_contain_text("(ordered)")
                await expect(lis.locator("td.flow .state")).to_have_text("blocked")
                await expect(lis.locator("td.flow")).to_contain_text("message ")
                await expect(lis.locator("td.waiting")).to_have_text("1")
                await page.screenshot(path=shot("channel-blocked.png"), full_page=True)

    run(scenario)


def test_times_are_local_to_the_viewer_and_to_the_second(tmp_path: Path) -> None:
    import re
    from datetime import UTC
    from zoneinfo import ZoneInfo

    from playwright.async_api import expect

    async def scenario() -> None:
        async with dashboard(tmp_path) as engine:
            await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"), [adt("T1")])
            await wait_for(lambda: engine.store.counts()["adt"].get("SENT") == 1, 30)
            record = engine.store.search(channel="adt")[0]
            received = record.received_at
            if received.tzinfo is None:
                received = received.replace(tzinfo=UTC)
            local = received.astimezone(ZoneInfo("America/New_York"))
            expected = local.strftime("%Y-%m-%d %H:%M:%S")
            url = base_url(engine)
            async with browser_page(engine, user="admin",
                                    timezone_id="America/New_York") as page:
                await page.goto(url + "/messages")
                cell = page.locator("#message-list tbody tr").first.locator("time")
                await expect(cell).to_have_text(re.compile(
                    "^" + re.escape(expected) + " (EST|GMT-5|UTC-5)$"))
                stamp = await cell.get_attribute("datetime")
                assert stamp and stamp.endswith("+00:00") and "." not in stamp

                # every time on the message, audit and users pages: local, no microseconds
                for path in (f"/messages/{record.id}", "/admin/audit", "/admin/users"):
                    await page.goto(url + path)
                    times = page.locator("main time")
                    await expect(times.first).to_have_attribute("data-local", "")
                    texts = await times.all_inner_texts()
                    assert texts, path
                    for text in texts:
                        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (EST|GMT-5|UTC-5)",
                                            text), (path, text)
                    main = await page.locator("main").inner_text()
                    assert not re.search(r"\d\d:\d\d:\d\d\.\d{6}", main), (path, main)
                await page.goto(f"{url}/messages/{record.id}")
                await page.screenshot(path=shot("message-local-times.png"), full_page=True)

    run(scenario)


def test_channel_page_and_message_list_update_without_reloading(tmp_path: Path) -> None:
    from playwright.async_api import expect

    async def scenario() -> None:
        async with dashboard(tmp_path, channels=[two_destinations(tmp_path)]) as engine:
            port = source_port(engine, "adt")
            await asyncio.to_thread(mllp_exchange, port, [adt("L1")])
            await wait_for(lambda: engine.store.counts()["adt"].get("ERROR") == 1, 30)
            url = base_url(engine)
            async with browser_page(engine) as page:
                await page.goto(url + "/channels/adt")
                await page.evaluate("window.notReloaded = true")
                facts = page.locator("#channel-facts")
                await expect(facts).to_contain_text("Received1")
                broken = page.locator("#channel-destinations tr[data-destination=broken]")
                await expect(broken.locator("td.in-error")).to_have_text("1")

                await asyncio.to_thread(mllp_exchange, port, [adt("L2"), adt("L3")])
                await expect(facts).to_contain_text("Received3", timeout=15_000)
                await expect(broken.locator("td.in-error")).to_have_text("3", timeout=15_000)
                await expect(page.locator("#channel-errors tbody tr")).to_have_count(3)
                await expect(page.locator("#channel-errors time").first).to_have_attribute(
                    "data-local", "")
                assert await page.evaluate("window.notReloaded === true")

                await page.goto(url + "/messages?channel=adt")
                await page.evaluate("window.notReloaded = true")
                rows = page.locator("#message-list tbody tr")
                await expect(rows).to_have_count(3)
                await asyncio.to_thread(mllp_exchange, port, [adt("L4")])
                await expect(rows).to_have_count(4, timeout=15_000)
                await expect(rows.first).to_contain_text("L4")
                assert await page.evaluate("window.notReloaded === true")
                await page.screenshot(path=shot("messages-live.png"), full_page=True)

    run(scenario)


AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
AXE_URL = "/__test__/axe.min.js"  # answered by the test's route, never by the server


async def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.x A/AA violations of the page as it is now."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.context.route("**" + AXE_URL, lambda route: route.fulfill(
            path=str(AXE), content_type="text/javascript"))
        await page.add_script_tag(url=AXE_URL)
    found: list[dict[str, Any]] = await page.evaluate("""async () => {
        const result = await axe.run(document, {runOnly: {type: 'tag',
            values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}});
        return result.violations.map(v => ({id: v.id, help: v.help,
            nodes: v.nodes.map(n => n.target.join(' ') + ' :: ' + n.failureSummary)}));
    }""")
    return found


def test_main_pages_pass_axe_and_work_from_the_keyboard(tmp_path: Path) -> None:
    from playwright.async_api import expect

    async def scenario() -> None:
        channel = file_channel(tmp_path, transform=[{"set": {"field": "PV1-2", "value": "O"}}])
        async with dashboard(tmp_path, channels=[channel]) as engine:
            await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"),
                                    [adt("A1"), adt("A2")])
            await wait_for(lambda: engine.store.counts()["adt"].get("SENT") == 2, 30)
            message_id = engine.store.search(channel="adt")[0].id
            url = base_url(engine)
            async with browser_page(engine, user="admin") as page:
                await page.context.route(
                    "**" + AXE_URL, lambda route: route.fulfill(
                        path=str(AXE), content_type="text/javascript"))
                problems = {}
                for path in ("/", "/channels/adt", "/messages", f"/messages/{message_id}",
                             "/admin/audit", "/admin/users"):
                    await page.goto(url + path)
                    await page.wait_for_load_state("networkidle")
                    found = await axe_violations(page)
                    if found:
                        problems[path] = found
                for path, found in problems.items():
                    for v in found:
                        print(path, v["id"], v["help"], *v["nodes"], sep="\n  ")
                assert not problems, list(problems)

                # every control has a name a screen reader can say
                for path in ("/", "/channels/adt", "/messages", f"/messages/{message_id}"):
                    await page.goto(url + path)
                    unnamed = await page.evaluate("""() => [...document.querySelectorAll(
                        'input:not([type=hidden]), select, textarea, button, a[href]')]
                        .filter(e => !e.closest('[aria-hidden=true]'))
                        .filter(e => !(e.labels && e.labels.length) &&
                                     !e.getAttribute('aria-label') &&
                                     !e.getAttribute('aria-labelledby') &&
                                     !(e.textContent || '').trim() &&
                                     !e.getAttribute('title'))
                        .map(e => e.outerHTML)""")
                    assert not unnamed, (path, unnamed)

                # the message list from the keyboard alone: filters, search, open a message
                await page.goto(url + "/messages")
                reached: list[str] = []
                for _ in range(40):
                    await page.keyboard.press("Tab")
                    reached.append(await page.evaluate(
                        "document.activeElement.name || document.activeElement.textContent"
                        ".trim() || document.activeElement.tagName"))
                    if reached[-1] == "Search":
                        break
                assert reached[-1] == "Search", reached
                for name in ("channel", "status", "since", "type", "control_id", "patient"):
                    assert name in reached, (name, reached)
                # the bulk controls (the buttons are off while nothing is ticked), the page's
                # "select all" box and the first row's, then the first message's link
                after: list[str] = []
                for _ in range(5):
                    await page.keyboard.press("Tab")
                    after.append(await page.evaluate(
                        "document.activeElement.getAttribute('aria-label') || "
                        "document.activeElement.name || document.activeElement.textContent"))
                assert after[:4] == ["format", "Export all matching",
                                     "Select all messages on this page",
                                     f"Select message {message_id}"], after
                focused = page.locator("#message-list a:focus")
                await expect(focused).to_have_count(1)
                outline = await page.evaluate(
                    "getComputedStyle(document.activeElement).outlineStyle")
                assert outline != "none"  # where the focus is can be seen
                await page.screenshot(path=shot("keyboard-focus.png"))
                await page.keyboard.press("Enter")
                await expect(page.locator("h1")).to_contain_text("Message")

    run(scenario)
