"""The management API on the real PostgreSQL store: users, full-text search (tsvector),
statistics by time bucket, reprocess."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from conduit.store.fulltext import Indexer
from tests.ops.helpers import adt, base_url, dashboard, file_channel, login, run
from tests.support import mllp_exchange, source_port, wait_for


def test_api_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    async def scenario() -> None:
        channels = [file_channel(tmp_path, search={"full_text": True})]
        async with dashboard(tmp_path, channels, store_url=postgres_url) as engine, \
                httpx.AsyncClient(
                base_url=base_url(engine)) as client:
            await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"),
                                    [adt(f"PG{i}", patient=f"PATPG{i}") for i in range(4)])
            await wait_for(lambda: engine.store.counts()["adt"].get("SENT") == 4)
            await asyncio.to_thread(Indexer(engine.store.engine).run)
            csrf = await login(client, "operator")
            found = (await client.get("/api/messages", params={"q": "patpg2"})).json()
            assert [m["control_id"] for m in found["items"]] == ["PG2"]
            stats = (await client.get("/api/stats", params={"bucket": "hour"})).json()
            assert [(s["status"], s["count"]) for s in stats["series"]] == [("SENT", 4)]
            message_id = found["items"][0]["id"]
            again = await client.post(f"/api/messages/{message_id}/reprocess",
                                      headers={"X-CSRF-Token": csrf})
            assert again.json()["mode"] == "reprocess"

            def reprocessed() -> bool:
                record = engine.store.get(message_id)
                return record is not None and any(e[1] == "reprocess" for e in record.events)

            await wait_for(reprocessed)
            await wait_for(lambda: engine.store.counts()["adt"].get("SENT") == 4)
            audit = engine.service("dashboard").app.state.web.audit.list(action="reprocess")
            assert audit[0]["message_id"] == message_id

    run(scenario)
