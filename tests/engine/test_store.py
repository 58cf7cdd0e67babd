"""The store against SQLite and the real local PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect

from conduit.engine.store import Store
from conduit.engine.store.store import Route


def test_migrations_create_the_schema_and_are_idempotent(store_url: str) -> None:
    store = Store(store_url)
    store.migrate()
    store.migrate()
    tables = set(inspect(store.engine).get_table_names())
    assert {"messages", "deliveries", "events", "alembic_version"} <= tables
    store.engine.dispose()


def test_message_lifecycle_and_status_settling(store_url: str) -> None:
    store = Store(store_url)
    store.migrate()

    async def scenario() -> None:
        mid = await store.received("adt", b"MSH|^~\\&|A\r", control_id="C1",
                                   message_type="ADT^A01", patient_id="P1", source="1.2.3.4:5")
        assert store.get(mid).status == "RECEIVED"  # type: ignore[union-attr]
        await store.processed(mid, "TRANSFORMED", transformed=b"T", error=None, routes=[
            Route("a", b"to-a"), Route("b", b"to-b"), Route("c", None, "MSH-9.1 is not ORU")])
        assert store.get(mid).status == "QUEUED"  # type: ignore[union-attr]
        await store.attempt_failed(mid, "a", 1, "ConnectionRefusedError")
        assert await store.delivered(mid, "a", "SENT", attempts=2, response=b"ACK",
                                     error=None) == "QUEUED"
        assert await store.delivered(mid, "b", "SENT", attempts=1, response=None,
                                     error=None) == "SENT"
        record = store.get(mid)
        assert record is not None
        assert record.raw == b"MSH|^~\\&|A\r" and record.transformed == b"T"
        by_name = {d.destination: d for d in record.deliveries}
        assert by_name["a"].attempts == 2 and by_name["a"].response == b"ACK"
        assert by_name["a"].content == b"to-a"
        assert by_name["c"].status == "FILTERED" and by_name["c"].error == "MSH-9.1 is not ORU"

        other = await store.received("adt", b"x", control_id="C2", message_type="ORU^R01")
        await store.processed(other, "TRANSFORMED", transformed=b"x", error=None,
                              routes=[Route("a", b"x")])
        assert await store.delivered(other, "a", "ERROR", attempts=5, response=b"NAK",
                                     error="AR") == "ERROR"
        await store.close()

    asyncio.run(scenario())


def test_concurrent_writes_are_grouped_and_all_committed(store_url: str) -> None:
    store = Store(store_url)
    store.migrate()

    async def scenario() -> list[int]:
        ids = await asyncio.gather(*[
            store.received("c", f"m{i}".encode(), control_id=str(i), message_type="ADT^A04")
            for i in range(300)])
        await store.close()
        return list(ids)

    ids = asyncio.run(scenario())
    assert len(set(ids)) == 300
    assert store.counts() == {"c": {"RECEIVED": 300}}
    store.engine.dispose()


def test_one_failing_operation_does_not_sink_its_group(store_url: str) -> None:
    store = Store(store_url)
    store.migrate()

    async def scenario() -> tuple[list[object], int]:
        def broken(connection: object) -> None:
            raise RuntimeError("boom")

        results = await asyncio.gather(
            store.received("c", b"1", control_id="1", message_type=None),
            store.writer.run(broken),
            store.received("c", b"2", control_id="2", message_type=None),
            return_exceptions=True)
        count = sum(store.counts()["c"].values())
        await store.close()
        return list(results), count

    results, count = asyncio.run(scenario())
    assert isinstance(results[1], RuntimeError)
    assert count == 2


def test_search_filters_and_pending_work(store_url: str) -> None:
    store = Store(store_url)
    store.migrate()

    async def scenario() -> None:
        a = await store.received("adt", b"a", control_id="A1", message_type="ADT^A01",
                                 patient_id="P9")
        b = await store.received("lab", b"b", control_id="B1", message_type="ORU^R01")
        await store.processed(b, "TRANSFORMED", transformed=b"b", error=None,
                              routes=[Route("x", b"B")])
        assert [r.id for r in store.search(channel="adt")] == [a]
        assert [r.id for r in store.search(message_type="ORU")] == [b]
        assert [r.id for r in store.search(control_id="A1")] == [a]
        assert [r.id for r in store.search(patient_id="P9")] == [a]
        assert [r.id for r in store.search(status="queued")] == [b]
        future = datetime.now(UTC) + timedelta(hours=1)
        assert store.search(since=future) == []
        assert len(store.search(until=future)) == 2
        assert store.pending_received("adt") == [(a, b"a")]
        assert store.pending_deliveries("lab") == [(b, "x", b"B")]
        found = await store.requeue(b, None, "by test")
        assert found == [("x", b"B")]
        assert store.get(b).events[-1][1] == "reprocess"  # type: ignore[union-attr]
        await store.close()

    asyncio.run(scenario())


def test_stored_content_is_compressed(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    store.migrate()
    body = b"OBX|1|TX|1^Note||" + b"lorem ipsum dolor sit amet " * 200 + b"\r"

    async def scenario() -> int:
        mid = await store.received("c", body, control_id="1", message_type=None)
        await store.close()
        return mid

    mid = asyncio.run(scenario())
    with store.engine.connect() as connection:
        stored = connection.exec_driver_sql("select length(raw) from messages").scalar_one()
    assert stored < len(body) / 5
    assert store.get(mid).raw == body  # type: ignore[union-attr]
    store.engine.dispose()
