"""The database source and destination on SQLite and on the real local PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from conduit.connectors.base import ConnectorContext
from conduit.connectors.database import (
    DatabaseDestination,
    DatabaseDestinationConfig,
    make_engine,
)
from conduit.core.errors import PermanentError, RetryableError
from conduit.core.protocols import Outbound
from tests.support import running_engine, wait_for

ADT = ("MSH|^~\\&|HIS|HOSP|ADT|HOSP|20260101||ADT^A04|{id}|P|2.5\r"
       "PID|1||{mrn}^^^HOSP^MR||TESTPATIENT^{given}\r")


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'his.db'}"
    return str(request.getfixturevalue("postgres_url"))


def execute(url: str, *statements: str, **params: Any) -> list[dict[str, Any]]:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            rows: list[dict[str, Any]] = []
            for statement in statements:
                result = connection.execute(text(statement), params)
                if result.returns_rows:
                    rows = [dict(r) for r in result.mappings()]
            return rows
    finally:
        engine.dispose()


def test_marker_source_sends_each_row_once_and_marks_it(db_url: str, tmp_path: Path) -> None:
    execute(db_url, "CREATE TABLE outbox (id INTEGER PRIMARY KEY, hl7 TEXT NOT NULL, "
                    "sent INTEGER NOT NULL DEFAULT 0)")
    for n in range(1, 4):
        execute(db_url, "INSERT INTO outbox (id, hl7) VALUES (:id, :hl7)", id=n,
                hl7=ADT.format(id=f"DB{n}", mrn=f"M{n}", given="A"))
    channel = {"name": "his-outbox", "data_type": "hl7v2",
               "source": {"type": "database", "url": db_url, "poll_interval": "50ms",
                          "query": "SELECT id, hl7 FROM outbox WHERE sent = 0 ORDER BY id",
                          "mark": "UPDATE outbox SET sent = 1 WHERE id = :id",
                          "content_column": "hl7"},
               "destinations": [{"name": "archive", "type": "file",
                                 "path": str(tmp_path / "out" / "{{ msg['MSH-10'] }}.hl7")}]}

    async def scenario() -> None:
        async with running_engine([channel], tmp_path) as engine:
            await wait_for(lambda: len(engine.store.search(channel="his-outbox")) == 3)
            await asyncio.to_thread(execute, db_url, "INSERT INTO outbox (id, hl7) VALUES "
                                    "(:id, :hl7)", id=4,
                                    hl7=ADT.format(id="DB4", mrn="M4", given="B"))
            await wait_for(lambda: len(engine.store.search(channel="his-outbox")) == 4)
            await asyncio.sleep(0.2)  # more polls: nothing is sent twice
            records = engine.store.search(channel="his-outbox")
            assert sorted(r.control_id for r in records) == ["DB1", "DB2", "DB3", "DB4"]
            await wait_for(lambda: len(list((tmp_path / "out").glob("*.hl7"))) == 4)
        assert execute(db_url, "SELECT count(*) AS n FROM outbox WHERE sent = 1") == [{"n": 4}]
    asyncio.run(scenario())


def test_watermark_source_survives_a_restart(db_url: str, tmp_path: Path) -> None:
    execute(db_url, "CREATE TABLE results (id INTEGER PRIMARY KEY, mrn TEXT, value TEXT)")
    execute(db_url, "INSERT INTO results VALUES (1, 'M1', '5.1'), (2, 'M2', '7.3')")
    channel = {"name": "results-feed",
               "source": {"type": "database", "url": db_url, "poll_interval": "50ms",
                          "query": "SELECT id, mrn, value FROM results WHERE id > :watermark "
                                   "ORDER BY id",
                          "watermark_column": "id"},
               "destinations": [{"name": "archive", "type": "file",
                                 "path": str(tmp_path / "out" / "{{ id }}.json")}]}

    async def first_run() -> list[Any]:
        async with running_engine([channel], tmp_path) as engine:
            await wait_for(lambda: len(engine.store.search(channel="results-feed")) == 2)
            return [json.loads(engine.store.get(r.id).raw)
                    for r in engine.store.search(channel="results-feed")]

    rows = asyncio.run(first_run())
    assert sorted(r["mrn"] for r in rows) == ["M1", "M2"]
    execute(db_url, "INSERT INTO results VALUES (3, 'M3', '1.0')")

    async def second_run() -> None:
        async with running_engine([channel], tmp_path) as engine:
            await wait_for(lambda: len(engine.store.search(channel="results-feed")) == 3)
            await asyncio.sleep(0.2)
            assert len(engine.store.search(channel="results-feed")) == 3  # 1 and 2 not again
    asyncio.run(second_run())


def test_destination_inserts_with_bound_parameters(db_url: str) -> None:
    execute(db_url, "CREATE TABLE observations (message_id INTEGER, mrn TEXT NOT NULL, "
                    "given TEXT, note TEXT, UNIQUE (message_id))")
    config = DatabaseDestinationConfig(
        name="warehouse", type="database", url=db_url,
        statement="INSERT INTO observations (message_id, mrn, given, note) "
                  "VALUES (:id, :mrn, :given, :note)",
        parameters={"id": "{{ id }}", "mrn": "{{ msg['PID-3.1'] }}",
                    "given": "{{ msg['PID-5.2'] }}", "note": "{{ msg['NTE-3'] }}"})

    async def scenario() -> None:
        destination = DatabaseDestination(config, ConnectorContext("c", Path(".")))
        tricky = ADT.format(id="X", mrn="M1'); DROP TABLE observations; --", given="O'Brien")
        assert await destination.send(Outbound(1, "c", "warehouse", tricky.encode())) == \
            b'{"rowcount":1}'
        with pytest.raises(PermanentError, match="refused the statement"):  # UNIQUE
            await destination.send(Outbound(1, "c", "warehouse", tricky.encode()))
        with pytest.raises(PermanentError):  # NOT NULL: empty renders as NULL
            await destination.send(Outbound(2, "c", "warehouse",
                                            ADT.format(id="Y", mrn="", given="").encode()))
        await destination.close()

    asyncio.run(scenario())
    assert execute(db_url, "SELECT message_id, mrn, given, note FROM observations") == [
        {"message_id": 1, "mrn": "M1'); DROP TABLE observations; --", "given": "O'Brien",
         "note": None}]


def test_destination_connection_failure_is_retryable(tmp_path: Path) -> None:
    config = DatabaseDestinationConfig(
        name="w", type="database", url="postgresql://postgres@127.0.0.1:1/none",
        statement="SELECT 1")

    async def scenario() -> None:
        destination = DatabaseDestination(config, ConnectorContext("c", tmp_path))
        with pytest.raises(RetryableError):
            await destination.send(Outbound(1, "c", "w", b"{}"))
        await destination.close()
    asyncio.run(scenario())
