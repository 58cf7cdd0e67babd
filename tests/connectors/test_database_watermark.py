"""The database source's watermark never skips a row (issue 17, item 9): rows sharing the last
watermark value, rows whose transaction commits after a later id's, a LIMIT smaller than the
look-back window, and a restart in between (nothing read twice)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from conduit.connectors.base import ConnectorContext
from conduit.connectors.database import DatabaseSource, DatabaseSourceConfig, make_engine
from conduit.core.protocols import Receipt
from tests.connectors.test_database import execute


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'his.db'}"
    return str(request.getfixturevalue("postgres_url"))


class Collector:
    """The engine side, reduced to what the source sees: every message accepted and kept."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def receive(self, raw: bytes, meta: dict[str, Any] | None = None) -> Receipt:
        self.received.append(raw)
        return Receipt(accepted=True, message_id=len(self.received))

    async def reject(self, raw: bytes, reason: str,
                     meta: dict[str, Any] | None = None) -> int | None:
        return None


def make_source(url: str, data_dir: Path, **config: Any) -> DatabaseSource:
    settings = {"type": "database", "url": url, "poll_interval": "1h", **config}
    return DatabaseSource(DatabaseSourceConfig.model_validate(settings),
                          ConnectorContext("feed", data_dir))


async def poll(source: DatabaseSource, inbound: Collector) -> list[str]:
    """One poll; the content column of each row it delivered."""
    before = len(inbound.received)
    source._inbound = inbound  # the poll alone, without the background task
    if source._engine is None:
        source._engine = make_engine(source.config.url)
        source._load_state()
    await source.poll()
    return [m.decode() for m in inbound.received[before:]]


def test_rows_in_the_same_second_as_the_watermark_are_read(db_url: str, tmp_path: Path) -> None:
    """`timestamp(0)`: a row written in the second the last poll ended on is still read."""
    execute(db_url, "CREATE TABLE results (id INTEGER PRIMARY KEY, body TEXT, "
                    "updated_at TIMESTAMP(0) NOT NULL)")
    insert = "INSERT INTO results VALUES (:id, :body, :at)"
    execute(db_url, insert, id=1, body="r1", at="2026-01-01 10:00:00")
    execute(db_url, insert, id=2, body="r2", at="2026-01-01 10:00:00")

    async def scenario() -> None:
        source = make_source(db_url, tmp_path, key_column="id", content_column="body",
                             watermark_column="updated_at", watermark_start="1970-01-01",
                             query="SELECT id, body, updated_at FROM results WHERE "
                                   "updated_at >= :watermark ORDER BY updated_at, id")
        inbound = Collector()
        assert await poll(source, inbound) == ["r1", "r2"]
        await asyncio.to_thread(execute, db_url, insert, id=3, body="r3",
                                at="2026-01-01 10:00:00")  # same second, after the poll
        await asyncio.to_thread(execute, db_url, insert, id=4, body="r4",
                                at="2026-01-01 10:00:01")
        assert await poll(source, inbound) == ["r3", "r4"]
        assert await poll(source, inbound) == []  # nothing twice
        await source.stop()
        # a restart keeps what was read: nothing again, and a late row still comes
        await asyncio.to_thread(execute, db_url, insert, id=5, body="r5",
                                at="2026-01-01 10:00:01")
        again = make_source(db_url, tmp_path, **source.config.model_dump(
            include={"key_column", "content_column", "watermark_column", "watermark_start",
                     "query"}))
        assert await poll(again, Collector()) == ["r5"]
        await again.stop()
    asyncio.run(scenario())


def test_the_classic_greater_than_query_on_seconds_misses_nothing(db_url: str,
                                                                  tmp_path: Path) -> None:
    """The form the schema's example used (``> :watermark``) no longer skips the second."""
    execute(db_url, "CREATE TABLE results (id INTEGER PRIMARY KEY, body TEXT, "
                    "updated_at TIMESTAMP(0) NOT NULL)")
    insert = "INSERT INTO results VALUES (:id, :body, :at)"
    execute(db_url, insert, id=1, body="r1", at="2026-01-01 10:00:00")

    async def scenario() -> None:
        source = make_source(db_url, tmp_path, key_column="id", content_column="body",
                             watermark_column="updated_at", watermark_start="1970-01-01",
                             query="SELECT id, body, updated_at FROM results WHERE "
                                   "updated_at > :watermark ORDER BY updated_at, id")
        inbound = Collector()
        assert await poll(source, inbound) == ["r1"]
        await asyncio.to_thread(execute, db_url, insert, id=2, body="r2",
                                at="2026-01-01 10:00:00")
        assert await poll(source, inbound) == ["r2"]
        assert await poll(source, inbound) == []
        await source.stop()
    asyncio.run(scenario())


def test_a_limit_smaller_than_the_window_pages_through_it(db_url: str, tmp_path: Path) -> None:
    execute(db_url, "CREATE TABLE results (id INTEGER PRIMARY KEY, body TEXT)")
    for n in range(1, 8):
        execute(db_url, "INSERT INTO results VALUES (:id, :body)", id=n, body=f"r{n}")

    async def scenario() -> None:
        source = make_source(db_url, tmp_path, content_column="body", watermark_column="id",
                             query="SELECT id, body FROM results WHERE id >= :watermark "
                                   "ORDER BY id LIMIT 2")
        inbound = Collector()
        assert await poll(source, inbound) == [f"r{n}" for n in range(1, 8)]
        await asyncio.to_thread(execute, db_url, "INSERT INTO results VALUES (8, 'r8')")
        assert await poll(source, inbound) == ["r8"]
        assert await poll(source, inbound) == []
        await source.stop()
    asyncio.run(scenario())


def test_a_row_committed_after_a_later_id_is_read(postgres_url: str, tmp_path: Path) -> None:
    """Two real transactions: id 1 commits after id 2 was read. Even with no look-back time,
    PostgreSQL's commit-order guard keeps the window open until transaction 1 has ended."""
    execute(postgres_url, "CREATE TABLE results (id SERIAL PRIMARY KEY, body TEXT)")
    engine = make_engine(postgres_url)
    slow = engine.connect()
    try:
        slow.execute(text("BEGIN"))
        slow.execute(text("INSERT INTO results (body) VALUES ('slow')"))  # takes id 1
        execute(postgres_url, "INSERT INTO results (body) VALUES ('quick')")  # id 2, committed

        async def scenario() -> None:
            source = make_source(postgres_url, tmp_path, content_column="body",
                                 watermark_column="id", watermark_lookback="0s",
                                 query="SELECT id, body FROM results WHERE id > :watermark "
                                       "ORDER BY id")
            inbound = Collector()
            assert await poll(source, inbound) == ["quick"]
            assert await poll(source, inbound) == []
            await asyncio.to_thread(slow.execute, text("COMMIT"))
            assert await poll(source, inbound) == ["slow"]
            assert await poll(source, inbound) == []
            await source.stop()
        asyncio.run(scenario())
    finally:
        slow.close()
        engine.dispose()


@pytest.mark.parametrize(("compare", "lookback"), [(">=", "0s"), (">", "60s")])
def test_concurrent_writers_lose_nothing(postgres_url: str, tmp_path: Path, compare: str,
                                         lookback: str) -> None:
    """Writers on two connections commit out of order on a ``timestamp(0)`` column while the
    source polls: every row arrives exactly once (the drill that delivered 106 of 238). With
    ``>=`` and no look-back time only the commit-order guard keeps the window open."""
    execute(postgres_url, "CREATE TABLE results (id SERIAL PRIMARY KEY, body TEXT, "
                          "updated_at TIMESTAMP(0) NOT NULL DEFAULT now())")
    stop = threading.Event()
    written: list[str] = []

    def writer(name: str, hold: float) -> None:
        engine = make_engine(postgres_url)
        try:
            n = 0
            while not stop.is_set():
                n += 1
                with engine.begin() as connection:
                    connection.execute(text("INSERT INTO results (body) VALUES (:b)"),
                                       {"b": f"{name}{n}"})
                    stop.wait(hold)  # holds its id while the other commits later ones
                written.append(f"{name}{n}")
        finally:
            engine.dispose()

    async def scenario() -> set[str]:
        source = make_source(postgres_url, tmp_path, key_column="id", content_column="body",
                             watermark_column="updated_at", watermark_start="1970-01-01",
                             watermark_lookback=lookback,
                             query="SELECT id, body, updated_at FROM results WHERE "
                                   f"updated_at {compare} :watermark ORDER BY updated_at, id")
        inbound = Collector()
        threads = [threading.Thread(target=writer, args=("a", 0.07)),
                   threading.Thread(target=writer, args=("b", 0.005))]
        for thread in threads:
            thread.start()
        got: list[str] = []
        try:
            for _ in range(60):
                got += await poll(source, inbound)
                await asyncio.sleep(0.02)
        finally:
            stop.set()
            for thread in threads:
                await asyncio.to_thread(thread.join)
        for _ in range(3):
            got += await poll(source, inbound)
        await source.stop()
        assert len(got) == len(set(got))  # nothing twice
        return set(got)

    got = asyncio.run(scenario())
    assert len(written) > 20
    assert got == set(written)


def test_the_drill_through_the_engine(postgres_url: str, tmp_path: Path) -> None:
    """The issue's drill, shortened: ``updated_at timestamp(0) DEFAULT now()``, the schema's
    ``> :watermark`` query, two writers committing out of order while the engine polls every
    50 ms. Every row is stored once."""
    import json

    from tests.support import running_engine, wait_for

    execute(postgres_url, "CREATE TABLE results (id SERIAL PRIMARY KEY, body TEXT, "
                          "updated_at TIMESTAMP(0) NOT NULL DEFAULT now())")
    channel = {"name": "results-feed",
               "source": {"type": "database", "url": postgres_url, "poll_interval": "50ms",
                          "query": "SELECT id, body, updated_at FROM results WHERE "
                                   "updated_at > :watermark ORDER BY updated_at, id",
                          "watermark_column": "updated_at", "key_column": "id",
                          "watermark_start": "1970-01-01"},
               "destinations": [{"name": "archive", "type": "file",
                                 "path": str(tmp_path / "out" / "{{ id }}.json")}]}
    stop = threading.Event()
    written: list[str] = []

    def writer(name: str, hold: float) -> None:
        engine = make_engine(postgres_url)
        try:
            n = 0
            while not stop.is_set():
                n += 1
                with engine.begin() as connection:
                    connection.execute(text("INSERT INTO results (body) VALUES (:b)"),
                                       {"b": f"{name}{n}"})
                    stop.wait(hold)
                written.append(f"{name}{n}")
        finally:
            engine.dispose()

    async def scenario() -> list[str]:
        async with running_engine([channel], tmp_path) as engine:
            threads = [threading.Thread(target=writer, args=("a", 0.3)),
                       threading.Thread(target=writer, args=("b", 0.01))]
            for thread in threads:
                thread.start()
            await asyncio.sleep(2.5)
            stop.set()
            for thread in threads:
                await asyncio.to_thread(thread.join)
            await wait_for(lambda: len(engine.store.search(channel="results-feed", limit=1000))
                           >= len(written))
            await asyncio.sleep(0.3)  # more polls: nothing twice
            records = engine.store.search(channel="results-feed", limit=1000)
            return [json.loads(engine.store.get(r.id).raw)["body"] for r in records]

    bodies = asyncio.run(scenario())
    assert len(written) > 50
    assert sorted(bodies) == sorted(written)
