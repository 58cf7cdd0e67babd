"""The engine end to end on the real local PostgreSQL store: MLLP in, MLLP out, every stage kept."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support import MllpReceiver, mllp_exchange, msa, running_engine, source_port, wait_for

MESSAGE = ("MSH|^~\\&|REG|HOSP|ADT|HOSP|20260101120000||ADT^A04|{id}|P|2.5\r"
           "PID|1||{id}^^^HOSP^MR||POSTGRES^TEST||19800101|F\r")


def test_mllp_through_a_postgresql_store(tmp_path: Path, postgres_url: str) -> None:
    with MllpReceiver() as downstream:
        async def scenario() -> None:
            channel = {
                "name": "pg", "source": {"type": "mllp", "host": "127.0.0.1", "port": 0},
                "transform": [{"set": {"field": "PID-5.1",
                                       "value": "{{ msg['PID-5.1'] | lower }}"}}],
                "destinations": [{"name": "next", "type": "mllp", "host": "127.0.0.1",
                                  "port": downstream.port}]}
            async with running_engine([channel], tmp_path, store_url=postgres_url) as engine:
                port = source_port(engine, "pg")
                payloads = [MESSAGE.format(id=f"PG{i}").encode() for i in range(50)]
                batches = await asyncio.gather(*[
                    asyncio.to_thread(mllp_exchange, port, payloads[i::5]) for i in range(5)])
                assert all(msa(a)[1] == "AA" for acks in batches for a in acks)
                await wait_for(lambda: len(downstream.messages) == 50, 20)
                await wait_for(lambda: engine.store.counts() == {"pg": {"SENT": 50}}, 20)
                record = engine.store.get(engine.store.search(control_id="PG7")[0].id)
                assert record.raw == payloads[7]
                assert b"postgres^TEST" in (record.transformed or b"")
                response = record.deliveries[0].response
                assert response and b"MSA|AA|PG7" in response
        asyncio.run(scenario())
