"""The event log (issue 19) in a real browser (Debian's Chromium through Playwright): an
operator logs in, pauses a channel from the overview, opens Events from the nav, sees the
login and the pause with local times, and filters by kind.

The screenshot is kept as ``test-artifacts/dashboard-19/events.png`` (git-ignored).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.ops.helpers import base_url, dashboard, run
from tests.ops.test_browser_dashboard import (
    AXE,
    AXE_URL,
    CHROMIUM,
    axe_violations,
    browser_page,
    shot,
)

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists() and shutil.which("chromium") is None,
                       reason="Debian's Chromium is not installed (apt-get install chromium)"),
    pytest.mark.timeout(120),
]


def test_a_pause_from_the_dashboard_shows_in_the_event_log(tmp_path: Path) -> None:
    from playwright.async_api import expect

    async def scenario() -> None:
        async with dashboard(tmp_path) as engine:
            url = base_url(engine)
            async with browser_page(engine, user="operator",
                                    timezone_id="America/New_York") as page:
                await page.goto(url + "/")
                await page.locator("form[action='/channels/adt/pause'] button").click()
                await expect(page.locator("form[action='/channels/adt/start']")).to_have_count(1)
                assert engine.control.state("adt") == "paused"
                await engine.events.settled()

                await page.locator("header nav a", has_text="Events").click()
                await expect(page).to_have_url(re.compile(r"/events$"))
                rows = page.locator("#event-list tbody tr")
                paused = rows.filter(has=page.locator("td", has_text="channel.paused"))
                await expect(paused).to_have_count(1)
                await expect(paused).to_contain_text("operator")
                await expect(paused).to_contain_text("paused: source closed, queues draining")
                await expect(paused.locator("a[href='/channels/adt']")).to_have_count(1)
                logged_in = rows.filter(has=page.locator("td", has_text="login.succeeded"))
                await expect(logged_in).to_have_count(1)
                await expect(logged_in).to_contain_text("operator")
                # newest first: the pause above the login
                kinds = await rows.evaluate_all("rows => rows.map(r => r.dataset.kind)")
                assert kinds.index("channel.paused") < kinds.index("login.succeeded"), kinds
                # times in the viewer's zone, to the second
                when = paused.locator("time")
                await expect(when).to_have_attribute("data-local", "")
                assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (EST|GMT-5|UTC-5)",
                                    await when.inner_text())
                await page.screenshot(path=shot("events.png"), full_page=True)

                # filter by kind: the channel family only
                await page.select_option("#event-filters select[name=kind]", "channel")
                await page.locator("#event-filters button[type=submit]").click()
                await expect(page).to_have_url(re.compile(r"/events\?kind=channel"))
                kinds = await page.locator("#event-list tbody tr").evaluate_all(
                    "rows => rows.map(r => r.dataset.kind)")
                assert kinds == ["channel.paused", "channel.deployed"], kinds
                await expect(page.locator("#event-list")).not_to_contain_text("login.")

                # the channel's page lists its last events too
                await page.goto(url + "/channels/adt")
                await expect(page.locator("#channel-events tbody tr").first).to_contain_text(
                    "channel.paused")

                # both pass axe-core's WCAG 2.1 A/AA checks
                await page.context.route("**" + AXE_URL, lambda route: route.fulfill(
                    path=str(AXE), content_type="text/javascript"))
                for path in ("/events", "/channels/adt"):
                    await page.goto(url + path)
                    await page.wait_for_load_state("networkidle")
                    assert await axe_violations(page) == [], path

    run(scenario)
