"""Bulk reprocess and export of ticked messages (issue 19): the API's export by ids and the
dashboard's bulk form (CSRF, roles, audit, the result page). The browser side is in
test_browser_bulk.py."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx

from tests.ops.helpers import adt, base_url, dashboard, login, run
from tests.support import mllp_exchange, source_port, wait_for


def _token(engine: Any, name: str) -> dict[str, str]:
    web = engine.service("dashboard").app.state.web
    return {"Authorization": f"Bearer {web.users.create_api_token(name)}"}


async def _five(engine: Any) -> dict[str, int]:
    """Five stored messages, B0..B4: their ids by MSH-10."""
    await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"),
                            [adt(f"B{i}", f"PAT{i}") for i in range(5)])
    await wait_for(lambda: engine.store.counts()["adt"].get("SENT") == 5, 30)
    return {m.control_id: m.id for m in engine.store.search(channel="adt")}


def _file(*messages: bytes) -> bytes:
    """What the HL7 export gives: each message, its last segment ended by CR LF."""
    return b"".join(m.rstrip(b"\r\n") + b"\r\n" for m in messages)


def test_export_by_ids_gives_exactly_those_audited_and_bounded(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path) as engine, httpx.AsyncClient(
                base_url=base_url(engine), headers=_token(engine, "operator")) as api:
            ids = await _five(engine)
            picked = [ids["B1"], ids["B3"]]
            web = engine.service("dashboard").app.state.web

            hl7 = await api.get("/api/messages/export", params={"ids": picked, "format": "hl7"})
            assert hl7.status_code == 200, hl7.text
            assert hl7.headers["content-disposition"] == 'attachment; filename="messages.hl7"'
            assert hl7.content == _file(adt("B3", "PAT3"), adt("B1", "PAT1"))  # newest first
            audited = web.audit.list(action="export")
            assert sorted(a["message_id"] for a in audited) == sorted(picked)
            assert {a["username"] for a in audited} == {"operator"}

            # NDJSON; an id twice counts once, an id that is not stored is left out
            ndjson = await api.get("/api/messages/export", params={
                "ids": [ids["B1"], ids["B1"], ids["B0"], 999_999]})
            lines = [json.loads(line) for line in ndjson.text.splitlines()]
            assert [m["control_id"] for m in lines] == ["B1", "B0"]
            assert lines[0]["raw"].startswith("MSH|")

            # ids or filters, not both; at most 1000 ids; bodies: not for viewers
            both = await api.get("/api/messages/export", params={"ids": picked,
                                                                 "channel": "adt"})
            assert both.status_code == 422
            many = await api.get("/api/messages/export", params={"ids": list(range(1, 1002))})
            assert many.status_code == 422
            viewer = await api.get("/api/messages/export", params={"ids": picked},
                                   headers=_token(engine, "viewer"))
            assert viewer.status_code == 403

            # "export all matching" of a list searched by a search field: the same messages
            matching = await api.get("/api/messages/export", params={
                "field": "MRN:PAT2", "format": "hl7"})
            assert matching.content == _file(adt("B2", "PAT2"))

    run(scenario)


def test_bulk_form_reprocesses_exports_and_refuses_viewers_and_forged_posts(
        tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path) as engine:
            ids = await _five(engine)
            picked = [ids["B0"], ids["B2"]]
            url = base_url(engine)
            web = engine.service("dashboard").app.state.web
            async with httpx.AsyncClient(base_url=url) as browser:
                csrf = await login(browser, "operator")
                listing = await browser.get("/messages?channel=adt",
                                            headers={"Accept": "text/html"})
                assert 'id="bulk"' in listing.text
                assert len(re.findall(r'type="checkbox" form="bulk" name="ids"',
                                      listing.text)) == 5
                assert "/api/messages/export?channel=adt&amp;limit=100000&amp;format=hl7" \
                    in listing.text

                channel = await browser.get("/channels/adt", headers={"Accept": "text/html"})
                assert 'id="bulk-errors"' in channel.text  # the recent errors: ticked the same
                assert "/api/messages/export?channel=adt&amp;status=ERROR&amp;format=hl7" \
                    in channel.text

                forged = await browser.post("/messages/reprocess", data={"ids": picked})
                assert forged.status_code == 403
                assert not web.audit.list(action="reprocess")

                done = await browser.post("/messages/reprocess", data={
                    "ids": [*picked, 424242], "csrf_token": csrf,
                    "back": "/messages?channel=adt"})
                assert done.status_code == 200, done.text
                assert "2 of 3 messages reprocessed, 1 failed." in done.text
                failures = done.text[done.text.index('id="bulk-failures"'):]
                assert "message 424242: not found, or nothing to send again" in failures
                assert 'href="/messages?channel=adt"' in done.text
                audited = web.audit.list(action="reprocess")
                assert sorted(a["message_id"] for a in audited) == sorted(picked)

                def reprocessed() -> bool:
                    return all(any(e[1] == "reprocess" for e in engine.store.get(i).events)
                               for i in picked)
                await wait_for(reprocessed, 30)
                untouched = engine.store.get(ids["B1"])
                assert not any(e[1] == "reprocess" for e in untouched.events)

                # a "back" elsewhere goes home instead
                away = await browser.post("/messages/reprocess", data={
                    "ids": [ids["B4"]], "csrf_token": csrf, "back": "//elsewhere.example"})
                assert 'id="bulk-back" href="/"' in away.text
                nothing = await browser.post("/messages/reprocess", data={"csrf_token": csrf})
                assert nothing.status_code == 422

                exported = await browser.post("/messages/export", data={
                    "ids": picked, "format": "hl7", "csrf_token": csrf})
                assert exported.status_code == 200
                assert exported.content == _file(adt("B2", "PAT2"), adt("B0", "PAT0"))
                assert sorted(a["message_id"] for a in web.audit.list(action="export")) == \
                    sorted(picked)

            async with httpx.AsyncClient(base_url=url) as browser:
                csrf = await login(browser, "viewer")
                listing = await browser.get("/messages", headers={"Accept": "text/html"})
                assert "data-bulk" not in listing.text and 'type="checkbox"' not in listing.text
                channel = await browser.get("/channels/adt", headers={"Accept": "text/html"})
                assert "data-bulk" not in channel.text
                for action in ("reprocess", "export"):
                    refused = await browser.post(f"/messages/{action}", data={
                        "ids": picked, "csrf_token": csrf})
                    assert refused.status_code == 403, action
            assert len(web.audit.list(action="reprocess")) == 3  # the operator's only

    run(scenario)
