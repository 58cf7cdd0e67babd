"""Search fields and opt-in full text on the real PostgreSQL store, with the engine's own
indexing job (issue 16)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.ops.helpers import adt, file_channel
from tests.support import mllp_exchange, running_engine, source_port, wait_for


def test_search_fields_and_opt_in_full_text_on_postgres(tmp_path: Path,
                                                         postgres_url: str) -> None:
    channels = [file_channel(tmp_path, name="lab", search={"full_text": True,
                                                           "fields": ["PV1-3.1"]}),
                file_channel(tmp_path, name="adt")]

    async def scenario() -> None:
        async with running_engine(channels, tmp_path, store_url=postgres_url) as engine:
            for name, prefix in (("lab", "L"), ("adt", "A")):
                await asyncio.to_thread(mllp_exchange, source_port(engine, name), [
                    adt(f"{prefix}{i}", patient=f"PATQ{i}") for i in range(3)])
            store = engine.store
            await wait_for(lambda: store.counts()["lab"].get("SENT") == 3
                           and store.counts()["adt"].get("SENT") == 3)
            await wait_for(lambda: store.fulltext_lag()[0] == 0, timeout=30)
            # full text: only the channel that opted in
            assert [r.control_id for r in store.search(text="patq1")] == ["L1"]
            # search fields: every channel, written with the message
            assert [r.control_id for r in store.search(fields=[("MRN", "PATQ2")])] \
                == ["A2", "L2"]
            assert [r.control_id for r in store.search(fields=[("PV1-3.1", "WARD")])] \
                == ["L2", "L1", "L0"]

    asyncio.run(scenario())
