"""The full-text index's lag is a metric and shows on the overview; searching by search field
needs the operator role (issue 16)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.ops.helpers import adt, base_url, dashboard, file_channel, login, run
from tests.ops.test_observability import _metric, _token
from tests.support import mllp_exchange, source_port, wait_for


def test_lag_is_a_metric_and_on_the_overview(tmp_path: Path) -> None:
    channels = [file_channel(tmp_path, search={"full_text": True}),
                file_channel(tmp_path, name="quiet")]

    async def scenario() -> None:
        async with dashboard(tmp_path, channels=channels) as engine, httpx.AsyncClient(
                base_url=base_url(engine)) as client:
            await engine.service("full-text indexing").stop()  # the index falls behind
            await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"),
                                    [adt("L1"), adt("L2"), adt("L3")])
            await wait_for(lambda: engine.store.counts()["adt"].get("SENT") == 3)
            text = (await client.get("/metrics", headers=_token(engine))).text
            assert _metric(text, "conduit_fulltext_lag_messages") == 3
            assert _metric(text, "conduit_fulltext_lag_seconds") >= 0
            await login(client, "viewer")
            page = (await client.get("/ui/channels")).text
            assert "Full-text index (adt):" in page and "3 message(s)" in page
            # a search field reveals patient data: operators only
            refused = await client.get("/api/messages", params={"field": "MRN:PAT1"})
            assert refused.status_code == 403
            await engine.service("full-text indexing").start()  # and it catches up

            async def caught_up() -> bool:
                text = (await client.get("/metrics", headers=_token(engine))).text
                return _metric(text, "conduit_fulltext_lag_messages") == 0

            for _ in range(100):
                if await caught_up():
                    break
                await asyncio.sleep(0.1)
            assert await caught_up()
            assert "up to date" in (await client.get("/ui/channels")).text

    run(scenario)


def test_the_message_browser_searches_by_search_field(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path) as engine, httpx.AsyncClient(
                base_url=base_url(engine)) as client:
            await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"), [
                adt(f"B{i}", patient=f"PATB{i % 2}") for i in range(5)])
            await wait_for(lambda: engine.store.counts()["adt"].get("SENT") == 5)
            await login(client, "viewer")
            refused = (await client.get("/messages", params={"field": "MRN:PATB1"})).text
            assert "needs the operator role" in refused and "B1" not in refused
            await login(client, "operator")
            page = (await client.get("/messages", params={"field": "MRN:PATB1",
                                                         "limit": 1})).text
            assert ">B3<" in page and ">B1<" not in page
            assert 'value="MRN:PATB1"' in page
            assert "field=MRN%3APATB1" in page  # the next page keeps the search field
            bad = (await client.get("/messages", params={"field": "MRN"})).text
            assert "NAME:VALUE" in bad

    run(scenario)
