"""The store against SQLite and the real local PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import inspect

from conduit.store import Store
from conduit.store import store as store_module
from conduit.store.store import Route, _received_between
from conduit.store.tables import messages


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


def test_get_many_reads_each_message_whole_in_the_order_asked(store_url: str) -> None:
    store = Store(store_url)
    store.migrate()

    async def scenario() -> list[int]:
        ids = []
        for n in range(3):
            mid = await store.received("adt", f"MSH|^~\\&|{n}\r".encode(), control_id=f"C{n}",
                                       message_type="ADT^A01")
            await store.processed(mid, "TRANSFORMED", transformed=f"T{n}".encode(), error=None,
                                  routes=[Route("b", f"b{n}".encode()), Route("a", None, "no")])
            ids.append(mid)
        await store.delivered(ids[1], "b", "ERROR", attempts=3, response=None, error="refused")
        await store.close()
        return ids

    ids = asyncio.run(scenario())
    asked = [ids[2], 10_000, ids[0], ids[1]]
    many = store.get_many(asked)
    assert [r.id if r else None for r in many] == [ids[2], None, ids[0], ids[1]]
    for record in many:
        if record is not None:
            assert record == store.get(record.id)
            assert [d.destination for d in record.deliveries] == ["b", "a"]  # route order
            assert record.deliveries[0].content == f"b{record.control_id[1:]}".encode()  # type: ignore[index]
            assert record.events == store.get(record.id).events  # type: ignore[union-attr]
    assert many[3].deliveries[0].error == "refused"  # type: ignore[union-attr]
    store.engine.dispose()


def test_a_time_range_reads_its_ids_off_the_index_and_finds_what_a_scan_finds(
        store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(store_url)
    store.migrate()
    base = datetime(2026, 11, 1, tzinfo=UTC)
    at = {i: base + timedelta(minutes=i) for i in range(1, 301)}
    at[250] = base + timedelta(minutes=5, seconds=30)  # committed late: a high id, an early time
    at[3] = base + timedelta(minutes=100)  # and the other way round
    with store.engine.begin() as connection:
        connection.execute(messages.insert(), [
            {"id": i, "channel": "adt", "received_at": t, "updated_at": t, "status": "SENT",
             "raw": b"x"} for i, t in at.items()])

    def scanned(since: datetime | None, until: datetime | None) -> list[int]:
        return sorted((i for i, t in at.items()
                       if (since is None or t >= since) and (until is None or t < until)),
                      reverse=True)[:50]

    ranges = [(base + timedelta(minutes=4), base + timedelta(minutes=10)),
              (None, base + timedelta(minutes=60)), (base + timedelta(minutes=200), None),
              (base + timedelta(minutes=2), base + timedelta(minutes=290)),
              (base + timedelta(minutes=7, seconds=10), base + timedelta(minutes=7, seconds=20)),
              (base + timedelta(minutes=20), base + timedelta(minutes=10)),
              (base + timedelta(days=1), base + timedelta(days=2))]
    for read in (store_module.RANGE_READ, 0):  # small ranges read off the index; then walks
        monkeypatch.setattr(store_module, "RANGE_READ", read)
        for since, until in ranges:
            found = [r.id for r in store.search(since=since, until=until)]
            assert found == scanned(since, until), (read, since, until)
    with store.engine.connect() as connection:  # an old range: its ids; a recent one: a walk
        old = _received_between(connection, base + timedelta(minutes=4),
                                base + timedelta(minutes=10))
        assert "BETWEEN" in str(old[-1]) and old[-1].compile().params == {
            "id_1": 4, "id_2": 250}
        recent = " ".join(map(str, _received_between(connection, base, base + timedelta(
            minutes=299))))
        assert "BETWEEN" not in recent
        assert ("+messages.received_at" in recent) == store_url.startswith("sqlite")
    store.engine.dispose()


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
        assert store.pending("adt") == ([a], {})
        assert store.pending("lab") == ([], {"x": [b]})
        assert store.queued("adt", None, [a, b]) == [(a, b"a", None)]  # none given
        assert store.queued("lab", "x", [a, b]) == [(b, b"B", None)]
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


def test_sent_at_and_correlation_id_read_back_as_written(store_url: str) -> None:
    """Both are stored only when they add something (sent_at: at updated_at; the correlation
    id: the control id); what comes back is what was written."""
    store = Store(store_url)
    store.migrate()

    async def scenario() -> None:
        same = await store.received("c", b"1", control_id="C1", message_type=None,
                                    correlation_id="C1")
        other = await store.received("c", b"2", control_id="C2", message_type=None,
                                     correlation_id="req-9")
        none = await store.received("c", b"3", control_id="C3", message_type=None)
        bare = await store.received("c", b"4", control_id=None, message_type=None)
        assert [store.correlation_id(i) for i in (same, other, none, bare)] == [
            "C1", "req-9", None, None]
        assert [r.correlation_id for r in store.search(channel="c")] == [
            None, None, "req-9", "C1"]
        await store.processed(same, "TRANSFORMED", transformed=b"1", error=None,
                              routes=[Route("a", b"1"), Route("b", b"1")])
        await store.delivered(same, "a", "SENT", attempts=1, response=None, error=None)
        await store.delivered(same, "b", "ERROR", attempts=3, response=None, error="AR")
        record = store.get(same)
        assert record is not None and record.correlation_id == "C1"
        a, b = record.deliveries
        assert a.sent_at == a.updated_at and a.sent_at is not None and b.sent_at is None
        await asyncio.sleep(0.01)
        await store.requeue(same, ["a"], "again")
        record = store.get(same)
        assert record is not None
        requeued = record.deliveries[0]
        assert requeued.status == "QUEUED" and requeued.sent_at == a.sent_at
        assert requeued.updated_at > a.updated_at
        await store.delivered(same, "a", "SENT", attempts=1, response=None, error=None)
        record = store.get(same)
        assert record is not None and record.deliveries[0].sent_at is not None
        assert record.deliveries[0].sent_at > a.sent_at
        await store.close()

    asyncio.run(scenario())


def test_full_text_finds_every_word_in_any_order(store_url: str) -> None:
    from conduit.store.fulltext import Indexer

    store = Store(store_url)
    store.migrate()

    async def scenario() -> list[int]:
        ids = [await store.received("c", body, control_id=str(i), message_type=None)
               for i, body in enumerate((
                   b"MSH|^~\\&|A||||20260101||ADT^A01^ADT_A01|1|P|2.5.1\rPID|1||P1||Smith^Jane\r",
                   b"MSH|^~\\&|B\rPID|1||P2||Jones-Brown^Jane\r"))]
        await store.close()
        return ids

    first, second = asyncio.run(scenario())
    assert Indexer(store.engine).run() == 2
    assert [r.id for r in store.search(text="jane")] == [second, first]
    assert [r.id for r in store.search(text="Jane SMITH")] == [first]
    assert [r.id for r in store.search(text="smith p2")] == []
    assert [r.id for r in store.search(text="p2 jones msh")] == [second]
    # words as FTS5 and PostgreSQL split them: any order, no phrases
    assert [r.id for r in store.search(text="ADT_A01 2.5.1")] == [first]
    assert [r.id for r in store.search(text="a01 adt 5")] == [first]
    assert [r.id for r in store.search(text="brown-jones")] == [second]
    assert [r.id for r in store.search(text="^|&")] == [second, first]  # no words: no filter
    store.engine.dispose()


def test_upgrade_keeps_what_older_versions_stored(store_url: str) -> None:
    """A store written at revision 0003 (surrogate delivery ids, text timestamps on SQLite,
    the full FTS5 table) upgrades with its deliveries in route order and searchable again."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from conduit.store.codec import pack
    from conduit.store.fulltext import Indexer
    from conduit.store.store import MIGRATIONS

    store = Store(store_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003_correlation_id")
    at = "2026-01-02 03:04:05.678901"
    with store.engine.begin() as connection:
        for i in (1, 2):
            connection.execute(text(
                "INSERT INTO messages (id, channel, received_at, updated_at, status, control_id, "
                "raw, correlation_id) VALUES (:i, 'old', :at, :at, 'SENT', :c, :raw, :c)"),
                {"i": i, "at": at, "c": f"C{i}", "raw": pack(f"MSH|^~\\&|OLD{i}\r".encode())})
        for name in ("zeta", "alpha", "mid"):  # route order, not alphabetical
            for i in (1, 2):
                connection.execute(text(
                    "INSERT INTO deliveries (message_id, destination, status, content, "
                    "attempts, updated_at, sent_at) "
                    "VALUES (:i, :d, 'SENT', :content, 1, :at, :at)"),
                    {"i": i, "d": name, "content": pack(name.encode()), "at": at})
    if store.engine.dialect.name == "sqlite":
        with store.engine.begin() as connection:  # indexed by the old indexer
            connection.execute(text("INSERT INTO message_fts(rowid, body) VALUES (1, 'OLD1')"))
            connection.execute(text(
                "INSERT INTO store_state (key, value) VALUES ('fulltext.last_id', '1')"))
    store.migrate()
    record = store.get(1)
    assert record is not None and record.correlation_id == "C1"
    assert [d.destination for d in record.deliveries] == ["zeta", "alpha", "mid"]
    assert [d.content for d in record.deliveries] == [b"zeta", b"alpha", b"mid"]
    sent = record.deliveries[0].sent_at
    assert sent is not None and sent.replace(tzinfo=None).isoformat(" ") == at
    assert Indexer(store.engine).run() >= 1
    assert [r.id for r in store.search(text="old2")] == [2]
    assert [r.id for r in store.search(text="old1")] == [1]

    async def scenario() -> None:  # and new deliveries go in beside the old ones
        await store.processed(2, "TRANSFORMED", transformed=b"x", error=None,
                              routes=[Route("b", b"x"), Route("a", b"x")])
        await store.close()

    asyncio.run(scenario())
    record = store.get(2)
    assert record is not None and [d.destination for d in record.deliveries] == ["b", "a"]
    store.engine.dispose()


def test_settling_in_one_group(store_url: str) -> None:
    """Outcomes committed together settle each message from all its deliveries: ERROR as soon
    as one failed (even with others pending), SENT once all are done, else as it was. A
    message's two deliveries finished in one group: only the last answers SENT (a watcher
    counting messages sent counts it once)."""
    store = Store(store_url)
    store.migrate()

    async def scenario() -> None:
        ids = [await store.received("g", b"m", control_id=str(i), message_type=None)
               for i in range(3)]
        for i in ids:
            await store.processed(i, "TRANSFORMED", transformed=b"m", error=None,
                                  routes=[Route("a", b"m"), Route("b", b"m"),
                                          Route("f", None, "not for f")])
        results = await asyncio.gather(
            store.delivered(ids[0], "a", "ERROR", attempts=3, response=None, error="AR"),
            store.delivered(ids[1], "a", "SENT", attempts=1, response=None, error=None),
            store.delivered(ids[1], "b", "SENT", attempts=1, response=None, error=None),
            store.delivered(ids[2], "a", "SENT", attempts=1, response=None, error=None))
        assert results == ["ERROR", "QUEUED", "SENT", "QUEUED"]
        assert await store.delivered(ids[0], "b", "SENT", attempts=1, response=None,
                                     error=None) == "ERROR"
        assert store.counts("g") == {"g": {"ERROR": 1, "SENT": 1, "QUEUED": 1}}
        await store.close()

    asyncio.run(scenario())


def test_raw_kept_for_replies_is_bounded(sqlite_url: str, monkeypatch: Any) -> None:
    from conduit.store import store as module

    monkeypatch.setattr(module, "RECENT_BYTES", 2500)
    store = Store(sqlite_url)
    for i in range(10):
        store._remember(i, bytes(1000))
    store._remember(99, bytes(module.RECENT_MAX + 1))
    assert list(store._recent) == [8, 9] and store._recent_bytes == 2000
    store._forget(9)
    store._forget(5)
    assert list(store._recent) == [8] and store._recent_bytes == 1000
    store.engine.dispose()


def test_writer_survives_losing_its_connection(postgres_url: str) -> None:
    """The writer keeps one connection; when the database drops it, the next group is replayed
    on fresh connections from the pool and nothing is lost."""
    from sqlalchemy import text

    store = Store(postgres_url)
    store.migrate()

    async def scenario() -> None:
        first = await store.received("w", b"1", control_id="1", message_type=None)
        with store.engine.connect() as connection:
            killed = connection.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")).all()
        assert killed
        second = await store.received("w", b"2", control_id="2", message_type=None)
        third = await store.received("w", b"3", control_id="3", message_type=None)
        assert first < second < third
        await store.close()

    asyncio.run(scenario())
    store = Store(postgres_url)
    assert store.counts() == {"w": {"RECEIVED": 3}}
    store.engine.dispose()


def test_postgresql_hot_writes_run_on_the_loop(postgres_url: str, monkeypatch: Any) -> None:
    """Groups of the hot path's writes go to PostgreSQL over the loop's asyncio connection,
    commit included; the writer thread (where every round trip waits for the GIL) is not used."""
    from conduit.store.batch import BatchWriter

    store = Store(postgres_url)
    store.migrate()
    threaded: list[int] = []
    original = BatchWriter._execute
    monkeypatch.setattr(BatchWriter, "_execute",
                        lambda self, group: threaded.append(len(group)) or original(self, group))
    routes = [Route("a", b"x"), Route("b", b"y")]

    async def scenario() -> list[str]:
        ids = await asyncio.gather(*[
            store.accepted("c", f"m{i}".encode(), control_id=str(i), message_type="ADT^A04",
                           status="TRANSFORMED", transformed=None, error=None, routes=routes)
            for i in range(50)])
        finals = await asyncio.gather(*[
            store.delivered(i, name, "SENT", attempts=1, response=b"ok", error=None)
            for i in ids for name in ("a", "b")])
        await store.close()
        return list(finals)

    finals = asyncio.run(scenario())
    assert threaded == []
    assert finals.count("SENT") >= 50  # each message settles SENT once both deliveries are in
    store.engine.dispose()
    store = Store(postgres_url)
    assert store.counts() == {"c": {"SENT": 50}}
    store.engine.dispose()


def one_failing_write(store: Store) -> list[object]:
    """Three writes in one group, the middle one a NOT NULL violation; what each caller got."""
    async def scenario() -> list[object]:
        results = await asyncio.gather(
            store.received("c", b"1", control_id="1", message_type=None),
            store.received(None, b"2", control_id="2", message_type=None),  # type: ignore[arg-type]
            store.received("c", b"3", control_id="3", message_type=None),
            return_exceptions=True)
        await store.close()
        return list(results)

    return asyncio.run(scenario())


def test_a_failing_hot_write_does_not_sink_its_group(store_url: str) -> None:
    """A step write that fails (here a NOT NULL violation) fails alone; its group's other
    writes commit (the group is replayed one write per transaction)."""
    store = Store(store_url)
    store.migrate()
    results = one_failing_write(store)
    assert isinstance(results[1], Exception)
    assert isinstance(results[0], int) and isinstance(results[2], int)
    assert store.counts() == {"c": {"RECEIVED": 2}}
    store.engine.dispose()


def test_two_writers_finishing_one_message_settle_it(postgres_url: str) -> None:
    """Two engine processes (here two stores) each record one of a message's two deliveries at
    the same moment: the message still settles SENT (neither may read the other's delivery as
    still QUEUED and leave the message QUEUED for ever)."""
    first, second = Store(postgres_url), Store(postgres_url)
    first.migrate()
    routes = [Route("a", b"x"), Route("b", b"y")]

    async def scenario() -> None:
        await second.received("warm-up", b"w", control_id="w", message_type=None)
        for _ in range(5):
            ids = await asyncio.gather(*[
                first.accepted("c", f"m{i}".encode(), control_id=str(i), message_type=None,
                               status="TRANSFORMED", transformed=None, error=None,
                               routes=routes)
                for i in range(100)])
            await asyncio.gather(*[
                store.delivered(i, name, "SENT", attempts=1, response=None, error=None)
                for i in ids for store, name in ((first, "a"), (second, "b"))])
        await first.close()
        await second.close()

    asyncio.run(scenario())
    assert first.counts()["c"] == {"SENT": 500}
    first.engine.dispose()
    second.engine.dispose()


def test_a_delivery_of_a_message_the_store_does_not_have(store_url: str) -> None:
    """A broker that outlived its store hands out envelopes of unknown messages: recording
    their delivery answers UNKNOWN (and records nothing) instead of failing its whole group."""
    store = Store(store_url)
    store.migrate()

    async def scenario() -> list[str]:
        known = await store.accepted("c", b"m", control_id="1", message_type=None,
                                     status="TRANSFORMED", transformed=None, error=None,
                                     routes=[Route("a", b"x")])
        finals = await asyncio.gather(
            store.delivered(known, "a", "SENT", attempts=1, response=None, error=None),
            store.delivered(known + 999, "a", "SENT", attempts=1, response=None, error=None))
        await store.close()
        return list(finals)

    assert asyncio.run(scenario()) == ["SENT", "UNKNOWN"]
    assert store.counts() == {"c": {"SENT": 1}}
    store.engine.dispose()


def test_postgresql_hot_writes_find_rows_by_key_in_a_new_store(postgres_url: str) -> None:
    """A new store has no planner statistics: the hot path's writes must still find rows by
    their keys, not scan the tables (whose cost per write would grow with the store)."""
    from sqlalchemy import create_engine, text

    store = Store(postgres_url)
    store.migrate()
    routes = [Route("a", b"x"), Route("b", b"y")]

    async def one(i: int) -> None:
        message_id = await store.accepted(
            "c", f"m{i}".encode(), control_id=str(i), message_type="ADT^A04",
            status="TRANSFORMED", transformed=None, error=None, routes=routes)
        await asyncio.gather(*[store.delivered(message_id, name, "SENT", attempts=1,
                                               response=None, error=None)
                               for name in ("a", "b")])

    async def scenario() -> None:
        for start in range(0, 600, 20):  # groups of 20 concurrent messages: 30 and more groups
            await asyncio.gather(*[one(i) for i in range(start, start + 20)])
        await store.close()  # its connection ends, so its statistics are reported

    asyncio.run(scenario())
    store.engine.dispose()
    engine = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        scans = dict(connection.execute(text(
            "SELECT relname, seq_scan FROM pg_stat_user_tables "
            "WHERE relname IN ('messages', 'deliveries')")).all())
    engine.dispose()
    assert scans["messages"] <= 10 and scans["deliveries"] <= 10, scans  # migrations: 8, 5


def test_postgresql_connections_say_who_they_are(postgres_url: str) -> None:
    """In pg_stat_activity (and in conduit bench's CPU by process): the hot path's writer
    apart from the engine's other connections."""
    from conduit.bench.runner import pg_backends

    store = Store(postgres_url)
    store.migrate()

    async def scenario() -> set[str]:
        await store.received("c", b"m", control_id="1", message_type=None)
        with store.engine.connect():  # one of the pool's, open meanwhile
            names = set(pg_backends(postgres_url).values())
        await store.close()
        return names

    assert {"conduit-writer", "conduit"} <= asyncio.run(scenario())


def test_sqlite_now_is_sqlite_text_and_microseconds_of_one_instant(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A new message's two times on SQLite, formatted without strftime: exactly what
    ``sqlite_text`` and ``microseconds`` give for that instant (a whole second too)."""
    from conduit.store import tables

    text, micros = tables.sqlite_now()
    instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    assert (text, micros) == (tables.sqlite_text(instant), tables.microseconds(instant))
    whole = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    monkeypatch.setattr(tables.time, "time_ns", lambda: tables.microseconds(whole) * 1000)
    assert tables.sqlite_now() == ("2026-01-02 03:04:05.000000", tables.microseconds(whole))
    assert tables.sqlite_text(whole) == "2026-01-02 03:04:05.000000"
