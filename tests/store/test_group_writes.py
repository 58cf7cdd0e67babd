"""The hot path's group writes (``store.writes``) on both stores: one statement per table per
group on PostgreSQL, and the rows applied exactly as if one by one."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from typing import Any

import pytest

from conduit.store import Store, writes
from conduit.store.store import Route

MESSAGES = 60


def _group_items(store: Store, count: int) -> list[tuple[Any, ...]]:
    """``insert_messages`` items for ``count`` new messages, two deliveries and a search field
    each (as ``Store.accepted`` makes them)."""
    items = []
    for i in range(count):
        row = store._message_row("c", f"m{i}".encode(), None, "TRANSFORMED", None, str(i),
                                 None, None, None, None)
        deliveries = [(name, position, "QUEUED", b"x", 0, None, row[2])
                      for position, name in enumerate(("a", "b"))]
        items.append((row, deliveries, [("k", str(i))]))
    return items


def test_postgresql_sends_a_group_as_one_statement_per_table(postgres_url: str) -> None:
    """What goes over the wire (libpq's trace of the real connection): a group of new
    messages is four statements (ids, messages, deliveries, search fields), not one per row;
    finishing all their deliveries is four (lock, deliveries, statuses, settle). The writes
    whose results nobody reads are pipelined: a sync only where a result is needed."""
    import psycopg
    from psycopg import pq

    store = Store(postgres_url)
    store.migrate()

    async def scenario(trace: int) -> tuple[list[int], list[str]]:
        async with await psycopg.AsyncConnection.connect(postgres_url) as connection:
            connection.pgconn.trace(trace)
            connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
            async with connection.cursor() as cursor:
                ids = await writes.insert_messages.run_async(cursor,
                                                             _group_items(store, MESSAGES))
            await connection.commit()
            async with connection.cursor() as cursor:
                finals = await writes.record_deliveries.run_async(cursor, [
                    ("SENT", 1, None, None, datetime.now(UTC), i, name, None)
                    for i in ids for name in ("a", "b")])
            await connection.commit()
            connection.pgconn.untrace()
        return ids, finals

    with tempfile.TemporaryFile("w+") as trace:
        ids, finals = asyncio.run(scenario(trace.fileno()))
        store.engine.dispose()
        trace.seek(0)
        sent = [line.split("\t")[2].strip() for line in trace if line.startswith("F\t")]
    assert len(ids) == MESSAGES
    assert finals == ["TRANSFORMED", "SENT"] * MESSAGES
    # each transaction: BEGIN and the four statements, then its commit (a simple Query)
    transactions = " ".join(sent).split("Query")[:-1]
    assert len(transactions) == 2, sent
    for messages in transactions:
        assert messages.split().count("Execute") == 1 + 4, sent
        assert messages.split().count("Sync") <= 3, sent


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_group_statements_and_rows_are_counted(request: pytest.FixtureRequest,
                                               database: str) -> None:
    """The op counters count what the database was sent: on PostgreSQL a group of new
    messages is four statements whatever its size, and rows are the rows written."""
    from conduit.store.opcount import COUNTS

    store = Store(str(request.getfixturevalue(f"{database}_url")))
    store.migrate()
    routes = [Route("a", b"x"), Route("b", b"y")]

    async def scenario() -> tuple[int, int]:
        await store.writer.start()
        before = COUNTS.statements, COUNTS.rows
        await asyncio.gather(*[
            store.accepted("c", f"m{i}".encode(), control_id=str(i), message_type=None,
                           status="TRANSFORMED", transformed=None, error=None, routes=routes,
                           search=[("k", str(i))])
            for i in range(MESSAGES)])
        counted = COUNTS.statements - before[0], COUNTS.rows - before[1]
        await store.close()
        return counted

    statements, rows = asyncio.run(scenario())
    store.engine.dispose()
    assert rows == 4 * MESSAGES
    assert statements == 4  # PostgreSQL: ids, then a statement per table; SQLite: rowid


def test_ids_come_back_in_order_for_a_large_group(store_url: str) -> None:
    """Each caller gets its own message's id, and ids increase in the order the group held
    the messages."""
    store = Store(store_url)
    store.migrate()

    async def scenario() -> list[int]:
        ids = await asyncio.gather(*[
            store.received("c", f"m{i}".encode(), control_id=str(i), message_type=None)
            for i in range(900)])
        await store.close()
        return list(ids)

    ids = asyncio.run(scenario())
    assert ids == sorted(ids) and len(set(ids)) == 900
    records = store.get_many(ids)
    assert [r.control_id if r else None for r in records] == [str(i) for i in range(900)]
    store.engine.dispose()


def test_nulls_and_bytes_read_back_as_written(store_url: str) -> None:
    """NULLs among values (a list of NULLs only, too), bytes of every value and text with
    quotes and braces survive the arrays."""
    store = Store(store_url)
    store.migrate()
    binary = bytes(range(256)) * 3
    odd = 'a "quoted", {braced} \\ NULL text'

    async def scenario() -> list[int]:
        ids = await asyncio.gather(
            store.accepted("c", binary, control_id=None, message_type=None,
                           status="TRANSFORMED", transformed=None, error=None,
                           routes=[Route("a", binary), Route("f", None, "not for f")]),
            store.accepted("c", b"plain", control_id=odd, message_type="ADT^A01",
                           patient_id=odd, source="s", correlation_id="NULL",
                           status="TRANSFORMED", transformed=b"t", error=None,
                           routes=[Route("a", b"")], search=[("PID-3", odd)]))
        await asyncio.gather(
            store.attempt_failed(ids[0], "a", 2, "refused"),
            store.delivered(ids[1], "a", "SENT", attempts=1, response=binary, error=None))
        await store.close()
        return list(ids)

    first, second = store.get_many(asyncio.run(scenario()))
    store.engine.dispose()
    assert first is not None and second is not None
    assert (first.raw, first.transformed, first.control_id, first.patient_id) == (
        binary, None, None, None)
    assert [(d.destination, d.status, d.attempts, d.content) for d in first.deliveries] == [
        ("a", "QUEUED", 2, binary), ("f", "FILTERED", 0, None)]
    assert first.deliveries[0].error is not None
    assert (second.control_id, second.patient_id, second.correlation_id, second.transformed) == (
        odd, odd, "NULL", b"t")
    assert [(d.status, d.content, d.response) for d in second.deliveries] == [
        ("SENT", b"", binary)]


def test_two_outcomes_of_one_delivery_in_one_group_keep_the_last(store_url: str) -> None:
    """Outcomes applied in turn: a group holding several of one delivery (or several attempts)
    ends with the last of each, as row by row did; ``UPDATE ... FROM`` alone applies any one
    (which, depends on the plan: here more outcomes than deliveries)."""
    store = Store(store_url)
    store.migrate()
    tries = 30

    async def scenario() -> tuple[list[str], list[int]]:
        ids = [await store.accepted("c", b"m", control_id=str(i), message_type=None,
                                    status="TRANSFORMED", transformed=None, error=None,
                                    routes=[Route("a", b"x")]) for i in range(3)]
        await asyncio.gather(*[
            store.attempt_failed(i, "a", attempts, f"try {attempts}")
            for i in ids for attempts in range(1, tries + 1)])
        attempts = [(d.attempts, d.error) for record in store.get_many(ids) if record
                    for d in record.deliveries]
        assert [(n, str(e) if e else None) for n, e in attempts] == [
            (tries, f"try {tries}")] * 3
        finals = await asyncio.gather(*[
            store.delivered(i, "a", status, attempts=attempts, response=None,
                            error=None if status == "SENT" else "AR")
            for i in ids for status, attempts in [("ERROR", n) for n in range(tries)]
            + [("SENT", tries)]])
        await store.close()
        return list(finals), ids

    finals, ids = asyncio.run(scenario())
    assert finals == (["QUEUED"] * tries + ["SENT"]) * 3
    assert store.counts() == {"c": {"SENT": 3}}
    assert [(d.status, d.attempts, d.error) for record in store.get_many(ids) if record
            for d in record.deliveries] == [("SENT", tries, None)] * 3
    store.engine.dispose()


@pytest.mark.parametrize("join", ["nestloop", "hashjoin", "mergejoin"])
def test_postgresql_keeps_the_last_outcome_whatever_the_plan(postgres_url: str,
                                                             join: str) -> None:
    """The same on PostgreSQL with each join method the only one allowed: without keeping
    the last of each in Python, each of these plans applied the first (the engine's own
    plans happened to apply the last)."""
    import psycopg

    store = Store(postgres_url)
    store.migrate()

    async def scenario() -> tuple[list[int], list[str]]:
        async with await psycopg.AsyncConnection.connect(postgres_url) as connection:
            for method in ("nestloop", "hashjoin", "mergejoin"):
                await connection.execute(f"SET enable_{method} = {method == join}")
            async with connection.cursor() as cursor:
                ids = await writes.insert_messages.run_async(cursor, _group_items(store, 3))
                await writes.record_attempts.run_async(cursor, [
                    (attempts, f"try {attempts}", datetime.now(UTC), i, "a")
                    for i in ids for attempts in (1, 2, 3)])
                finals = await writes.record_deliveries.run_async(cursor, [
                    (status, attempts, None, error, datetime.now(UTC), i, "a", None)
                    for i in ids for status, attempts, error in (
                        ("ERROR", 4, "AR"), ("SENT", 5, None))])
            await connection.commit()
        return ids, finals

    ids, finals = asyncio.run(scenario())
    assert finals == ["TRANSFORMED"] * 6  # "b" is still queued
    records = [r for r in store.get_many(ids) if r]
    store.engine.dispose()
    assert [(d.destination, d.status, d.attempts, d.error) for r in records
            for d in r.deliveries] == [("a", "SENT", 5, None), ("b", "QUEUED", 0, None)] * 3
