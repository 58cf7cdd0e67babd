"""The hot path's bulk writes, each written once as *steps* and run by either kind of cursor.

A bulk write (see ``batch``) executes one kind of write for a whole group of concurrent callers.
Each is a generator: it yields the statements it needs (:class:`Many`, :class:`Rows`) and gets
their results back, so the same code runs on a blocking DB-API cursor (SQLite on the event loop,
any database in the writer thread: :func:`run`) and on psycopg's asyncio cursor (PostgreSQL on
the event loop: :func:`run_async`). On PostgreSQL a writer thread handed the GIL back and forth
with the busy loop on every round trip; on the loop nothing is handed over (a group of ~20 writes
still takes ~11 ms under load: PostgreSQL's own time, 3 ms on an idle machine).

Content arrives as it is and is compressed here (``codec.pack``), so that it is compressed by
whichever process runs the write: on SQLite in the engine, the writing process (``process``).

The hot path talks to the driver directly: plain SQL, one parameter tuple per row (on
PostgreSQL turned into one array per column). SQLAlchemy's compiled statements cost 2-3x the
database's own work per row here (parameter dicts, per-row bind processing, insertmanyvalues
for RETURNING). Values arrive ready for the driver (``Store._stamp``, ``tables.sqlite_text``).
Statements are written with ``?`` and turned into psycopg's ``%s`` for PostgreSQL.

A group's rows go to the database as one statement per table, not one per row: on SQLite as
multi-row VALUES (see ``_many``), on PostgreSQL as one array per column, ``unnest``-ed (see
``_ARRAY_INSERTS``): psycopg's executemany binds and executes every row (~0.35 ms of the
engine's CPU per message) and PostgreSQL starts an executor for each.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Generator, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from conduit.store import pgarrays
from conduit.store.codec import pack
from conduit.store.opcount import COUNTS

FINAL_DELIVERY = ("SENT", "ERROR", "FILTERED")


@dataclass(slots=True, frozen=True)
class Many:
    """``executemany(sql, rows)``."""

    sql: str
    rows: Sequence[Sequence[Any]]


@dataclass(slots=True, frozen=True)
class Rows:
    """``execute(sql, params)``, then every row it returns."""

    sql: str
    params: Sequence[Any]


@dataclass(slots=True, frozen=True)
class Write:
    """``execute(sql, params)`` of a statement whose result nobody reads: on psycopg's asyncio
    cursor it is only sent, and its outcome read with the next step's (one round trip for a
    run of them)."""

    sql: str
    params: Sequence[Any]


Step = Many | Rows | Write
Steps = Generator[Step, Any, list[Any]]


class StepWrite:
    """A bulk write made of steps: callable like any bulk (``(connection, params) -> results``,
    run on the connection's driver cursor) and runnable on an asyncio cursor."""

    __slots__ = ("__name__", "steps")

    def __init__(self, steps: Callable[[str, Sequence[Any]], Steps]) -> None:
        self.steps = steps
        self.__name__ = steps.__name__

    def __call__(self, connection: Connection, params: Sequence[Any]) -> list[Any]:
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with closing(cursor):
            return run(cursor, self.steps(connection.dialect.name, params))

    async def run_async(self, cursor: Any, params: Sequence[Any]) -> list[Any]:
        """On psycopg's ``AsyncCursor`` (PostgreSQL), in pipeline mode: each :class:`Write` is
        sent on a cursor of its own and the database answers them all at the next read (a
        :class:`Rows`) or at the end, so a run of writes costs one round trip, not one each."""
        steps = self.steps("postgresql", params)
        connection = cursor.connection
        sent: list[tuple[Write, Any]] = []
        value: Any = None
        async with connection.pipeline() as pipeline:
            while True:
                try:
                    step = steps.send(value)
                except StopIteration as done:
                    result = list(done.value)
                    break
                if isinstance(step, Write):
                    writing = connection.cursor()
                    await writing.execute(step.sql, step.params)
                    sent.append((step, writing))
                    value = None
                else:  # Rows: on PostgreSQL every write is a Write (see _many)
                    assert isinstance(step, Rows)
                    await cursor.execute(step.sql, step.params)
                    await pipeline.sync()
                    _count(step, cursor)
                    value = await cursor.fetchall()
        for step, writing in sent:  # answered: the pipeline's end waited for them
            _count(step, writing)
            await writing.close()
        return result


def run(cursor: Any, steps: Steps) -> list[Any]:
    """Run ``steps`` on a blocking DB-API cursor (sqlite3 or psycopg)."""
    value: Any = None
    while True:
        try:
            step = steps.send(value)
        except StopIteration as done:
            return list(done.value)
        if isinstance(step, Rows):
            cursor.execute(step.sql, step.params)
            _count(step, cursor)
            value = cursor.fetchall()
        elif isinstance(step, Write):
            cursor.execute(step.sql, step.params)
            _count(step, cursor)
            value = None
        else:
            cursor.executemany(step.sql, step.rows)
            _count(step, cursor)
            value = None


def _count(step: Step, cursor: Any) -> None:
    """Count the statement just executed and the rows it wrote (``opcount``): the driver's
    row count, except for a read (the rows it returned, or locked, are not written)."""
    COUNTS.statements += 1
    if not step.sql.startswith("SELECT") and cursor.rowcount > 0:
        COUNTS.rows += cursor.rowcount


# -- statements ---------------------------------------------------------------------------------

def _statements(dialect: str) -> dict[str, str]:
    sql = {
        "insert_message": (
            "INSERT INTO messages (channel, received_at, updated_at, status, control_id, "
            "message_type, patient_id, source, raw, transformed, error, correlation_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        "update_processed": (
            "UPDATE messages SET status = ?, transformed = ?, error = ?, updated_at = ? "
            "WHERE id = ?"),
        "delete_deliveries": "DELETE FROM deliveries WHERE message_id = ?",
        "insert_search_field": (
            "INSERT INTO search_fields (message_id, name, value) VALUES (?, ?, ?)"),
        "insert_delivery": (
            "INSERT INTO deliveries (message_id, destination, position, status, content, "
            "attempts, error, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
        "update_attempts": (
            "UPDATE deliveries SET attempts = ?, error = ?, updated_at = ? "
            "WHERE message_id = ? AND destination = ?"),
        # sent_at stays NULL: a SENT delivery was sent at its updated_at (see store.sent_at())
        "update_delivery": (
            "UPDATE deliveries SET status = ?, attempts = ?, response = ?, error = ?, "
            "updated_at = ?, sent_at = NULL WHERE message_id = ? AND destination = ?"),
        "settle": "UPDATE messages SET status = ?, updated_at = ? WHERE id = ?",
        "statuses": (
            "SELECT m.id, m.status, d.status FROM messages m LEFT JOIN deliveries d "
            "ON d.message_id = m.id WHERE m.id "),
    }
    if dialect == "sqlite":
        sql["statuses_packed"] = (
            "SELECT group_concat(m.id || ' ' || m.status || ' ' || coalesce(d.status, '-'), ',') "
            "FROM messages m LEFT JOIN deliveries d ON d.message_id = m.id WHERE m.id ")
    else:
        sql = {name: statement.replace("?", "%s") for name, statement in sql.items()}
        sql["lock_messages"] = "SELECT id FROM messages WHERE id = ANY(%s) ORDER BY id FOR UPDATE"
    return sql


def _unpack_status(item: str) -> tuple[int, str, str | None]:
    """One ``id status delivery-status`` of the packed statuses query."""
    message_id, status, delivery = item.split(" ")
    return int(message_id), status, None if delivery == "-" else delivery


_SQL = {"sqlite": _statements("sqlite"), "postgresql": _statements("postgresql")}

# SQLite gives up the GIL for every step of a statement (every row of an executemany) and must
# win it back from the busy event loop each time: under load a group of 20 writes took ~5 ms
# instead of ~1. So on SQLite the hot writes send a group's rows in one statement (multi-row
# VALUES; UPDATE ... FROM (VALUES ...), SQLite 3.33+): a few steps per group, not one per row.
_ROWS_PER_STATEMENT = 400
_MULTI_ROW = sqlite3.sqlite_version_info >= (3, 33, 0)
_UPDATE_FROM = {
    # name: (SET clause from v.columnN, WHERE clause) for the UPDATE ... FROM (VALUES ...) form
    "update_delivery": ("status = v.column1, attempts = v.column2, response = v.column3, "
                        "error = v.column4, updated_at = v.column5, sent_at = NULL",
                        "deliveries.message_id = v.column6 AND deliveries.destination = "
                        "v.column7", "deliveries"),
    "settle": ("status = v.column1, updated_at = v.column2", "messages.id = v.column3",
               "messages"),
}


@functools.lru_cache(maxsize=256)
def _multi_row_sql(name: str, width: int, count: int) -> str:
    values = ", ".join(["(" + ", ".join("?" * width) + ")"] * count)
    if name in _UPDATE_FROM:
        assignments, where, table = _UPDATE_FROM[name]
        return f"UPDATE {table} SET {assignments} FROM (VALUES {values}) AS v WHERE {where}"
    statement = _SQL["sqlite"][name]
    return statement[:statement.index("VALUES") + 7] + values


def _many(dialect: str, name: str, rows: Sequence[tuple[Any, ...]]) -> Generator[Step, Any, None]:
    """Statement ``name`` for every row: on PostgreSQL as one statement (``_ARRAYS``), on
    SQLite as few multi-row statements where it has that form (an INSERT, or one of
    ``_UPDATE_FROM``), else an executemany."""
    if dialect != "sqlite":
        yield Write(_ARRAYS[name], [kind(column) for kind, column in zip(
            _ARRAY_KINDS[name], zip(*rows, strict=True), strict=True)])
        return
    statement = _SQL[dialect][name]
    if (not _MULTI_ROW or len(rows) < 2
            or not (name in _UPDATE_FROM or statement.startswith("INSERT"))):
        yield Many(statement, rows)
        return
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start:start + _ROWS_PER_STATEMENT]
        yield Rows(_multi_row_sql(name, len(chunk[0]), len(chunk)),
                   [value for row in chunk for value in row])


# PostgreSQL takes a group's rows as one array per column (psycopg adapts a list to an array;
# the cast says which, e.g. for a list of NULLs) and ``unnest`` turns them back into rows: one
# statement, one executor start and one bind for the lot. The arrays go in binary, each column
# written by its type's dumper (``pgarrays``: psycopg's own list dumper costs ~2.5 µs an
# element in Python). Each statement's row, in order: its columns and their types; an UPDATE's
# key columns (its WHERE) and what else it sets.
_ARRAY_INSERTS = {
    "insert_message": ("messages", "id bigint, channel text, received_at timestamptz, "
                       "updated_at timestamptz, status text, control_id text, message_type "
                       "text, patient_id text, source text, raw bytea, transformed bytea, "
                       "error text, correlation_id text"),
    "insert_delivery": ("deliveries", "message_id bigint, destination text, position smallint, "
                        "status text, content bytea, attempts integer, error text, "
                        "updated_at timestamptz"),
    "insert_search_field": ("search_fields", "message_id bigint, name text, value text"),
}
_ARRAY_UPDATES = {
    "update_processed": ("messages", "status text, transformed bytea, error text, "
                         "updated_at timestamptz, id bigint", ("id",), ""),
    "update_attempts": ("deliveries", "attempts integer, error text, updated_at timestamptz, "
                        "message_id bigint, destination text", ("message_id", "destination"), ""),
    "update_delivery": ("deliveries", "status text, attempts integer, response bytea, error "
                        "text, updated_at timestamptz, message_id bigint, destination text",
                        ("message_id", "destination"), ", sent_at = NULL"),
    "settle": ("messages", "status text, updated_at timestamptz, id bigint", ("id",), ""),
}


def _array_statements() -> tuple[dict[str, str], dict[str, list[type[pgarrays.Column]]]]:
    """Each statement's SQL, written once, and its columns' classes (``pgarrays``)."""
    sql = {}
    kinds = {}
    for name, (table, row) in _ARRAY_INSERTS.items():
        columns = [column.split(" ", 1) for column in row.split(", ")]
        kinds[name] = [pgarrays.BY_TYPE[t] for _, t in columns]
        sql[name] = (f"INSERT INTO {table} ({', '.join(c for c, _ in columns)}) SELECT * FROM "
                     f"unnest({', '.join(f'%b::{t}[]' for _, t in columns)})")
    for name, (table, row, keys, extra) in _ARRAY_UPDATES.items():
        columns = [column.split(" ", 1) for column in row.split(", ")]
        kinds[name] = [pgarrays.BY_TYPE[t] for _, t in columns]
        assignments = ", ".join(f"{c} = v.{c}" for c, _ in columns if c not in keys)
        where = " AND ".join(f"{table}.{key} = v.{key}" for key in keys)
        sql[name] = (f"UPDATE {table} SET {assignments}{extra} FROM "
                     f"unnest({', '.join(f'%b::{t}[]' for _, t in columns)}) "
                     f"AS v({', '.join(c for c, _ in columns)}) WHERE {where}")
    sql["delete_deliveries"] = "DELETE FROM deliveries WHERE message_id = ANY(%b::bigint[])"
    kinds["delete_deliveries"] = [pgarrays.Bigints]
    return sql, kinds


_ARRAYS, _ARRAY_KINDS = _array_statements()
#: Fresh message ids for a group (see ``insert_messages``).
_NEW_IDS = "SELECT array_agg(nextval('messages_id_seq')) FROM generate_series(1, %s::integer)"


def _last_of_each(rows: Sequence[tuple[Any, ...]], *key: int) -> list[tuple[Any, ...]]:
    """``rows`` with only the last for each key (the columns at ``key``): what applying them in
    turn leaves. ``UPDATE ... FROM`` applies one joined row per target row, and which one is
    up to the plan (PostgreSQL's and SQLite's documentation both say so): a group must not hold
    two."""
    return list({tuple(row[i] for i in key): row for row in rows}.values())


# -- the bulk writes ----------------------------------------------------------------------------

def _packed_delivery(row: tuple[Any, ...], raw: bytes | None,
                     transformed: bytes | None) -> tuple[Any, ...]:
    """A ``Store._delivery_rows`` row with its content compressed (a copy of the raw or
    transformed content costs a byte, see ``codec``)."""
    return (*row[:3], pack(row[3], raw, transformed=transformed), *row[4:])


@StepWrite
def insert_messages(dialect: str, items: Sequence[tuple[Any, ...]]) -> Steps:
    """New messages (``Store._message_row``), each with its deliveries (none for a message not
    yet processed) and, when given, its search fields (``(name, value)`` pairs, written in the
    same transaction); their ids, in order."""
    rows, routed = [], []
    searched: list[Sequence[tuple[str, str]]] = []
    for item in items:
        message, deliveries = item[0], item[1]
        searched.append(item[2] if len(item) > 2 else ())
        raw, transformed = message[8], message[9]
        rows.append((*message[:8], pack(raw), pack(transformed, raw), *message[10:]))
        routed.append([_packed_delivery(row, raw, transformed) for row in deliveries])
    if dialect == "sqlite":
        yield from _many(dialect, "insert_message", rows)
        # SQLite gives a row without a rowid the largest rowid plus one, and this
        # transaction holds the write lock: the group's ids are consecutive.
        last = int((yield Rows("SELECT last_insert_rowid()", ()))[0][0])
        ids = list(range(last - len(rows) + 1, last + 1))
    else:
        # PostgreSQL does not promise that INSERT ... RETURNING answers in the order of its
        # input rows: the ids are drawn from the sequence first (one statement for the group;
        # sorted, so that they increase in the order the messages came, as row by row did)
        # and inserted with the rows. The draw is the group's one extra round trip.
        ids = sorted((yield Rows(_NEW_IDS, (len(rows),)))[0][0])
        yield from _many(dialect, "insert_message",
                         [(message_id, *row) for message_id, row in zip(ids, rows, strict=True)])
    deliveries = [(message_id, *row) for message_id, of_message in zip(ids, routed, strict=True)
                  for row in of_message]
    if deliveries:
        yield from _many(dialect, "insert_delivery", deliveries)
    fields = [(message_id, name, value)
              for message_id, pairs in zip(ids, searched, strict=True) for name, value in pairs]
    if fields:
        yield from _many(dialect, "insert_search_field", fields)
    return ids


@StepWrite
def record_processed(dialect: str, items: Sequence[tuple[tuple[Any, ...], list[tuple[Any, ...]],
                                                          bytes | None]]) -> Steps:
    """The pipeline's outcome for messages stored RECEIVED, with their deliveries; each item
    ``((status, transformed, error, stamp, id), deliveries, raw)``."""
    messages: list[tuple[Any, ...]] = []
    deliveries: list[tuple[Any, ...]] = []
    routed: list[tuple[int]] = []
    for (status, transformed, error, stamp, message_id), rows, raw in items:
        messages.append((status, pack(transformed, raw), error, stamp, message_id))
        if rows:
            routed.append((message_id,))
            deliveries.extend((message_id, *_packed_delivery(row, raw, transformed))
                              for row in rows)
    yield from _many(dialect, "update_processed", _last_of_each(messages, 4))
    if routed:
        # A redelivered message is processed again: its deliveries are replaced, not doubled.
        yield from _many(dialect, "delete_deliveries", routed)
        yield from _many(dialect, "insert_delivery", deliveries)
    return [None] * len(items)


@StepWrite
def record_attempts(dialect: str, rows: Sequence[tuple[Any, ...]]) -> Steps:
    yield from _many(dialect, "update_attempts", _last_of_each(rows, 3, 4))
    return [None] * len(rows)


@StepWrite
def record_deliveries(dialect: str, rows: Sequence[tuple[Any, ...]]) -> Steps:
    """Final delivery outcomes, then each message's status from all its deliveries: ERROR if
    any failed, SENT once all are done (otherwise it stays as it is). Each row ends with the
    message's raw content when at hand: the reply is stored as a delta against it."""
    sql = _SQL[dialect]
    rows = [(status, attempts, pack(response, raw, reply=True), error, stamp, message_id, name)
            for status, attempts, response, error, stamp, message_id, name, raw in rows]
    ids = sorted({row[5] for row in rows})
    found: dict[int, list[Any]] = {}  # id -> [status, any delivery failed, any pending]
    if dialect != "sqlite":
        # Two transactions finishing the two deliveries of one message (two writer connections,
        # or two engine processes) would each read the other's delivery as still QUEUED and
        # neither would settle the message: the message rows are locked first (in id order, so
        # no two transactions wait for each other), and the statuses are read after the lock.
        yield Write(sql["lock_messages"], (ids,))
    # one outcome per delivery: the last, as if the rows were applied in turn
    yield from _many(dialect, "update_delivery", _last_of_each(rows, 5, 6))
    if dialect == "sqlite":
        # one row for the lot (each row fetched is a step, see _many)
        packed = (yield Rows(sql["statuses_packed"] + f"IN ({', '.join('?' * len(ids))})",
                             ids))[0][0] or ""
        statuses = [_unpack_status(item) for item in packed.split(",") if item]
    else:
        statuses = yield Rows(sql["statuses"] + "= ANY(%s)", (ids,))
    for message_id, status, delivery in statuses:
        entry = found.setdefault(message_id, [status, False, False])
        if delivery == "ERROR":
            entry[1] = True
        elif delivery is not None and delivery not in FINAL_DELIVERY:
            entry[2] = True
    stamp = rows[-1][4]
    settled = []
    before = {message_id: entry[0] for message_id, entry in found.items()}
    for message_id, entry in found.items():
        if entry[1] or not entry[2]:
            entry[0] = "ERROR" if entry[1] else "SENT"
            settled.append((entry[0], stamp, message_id))
    if settled:
        yield from _many(dialect, "settle", settled)
    # Each row answers the message's status after it, as if the rows were applied in turn: a
    # message settled by this group is settled by its last row here (its earlier rows answer
    # the status it had), so a watcher counts it once. A message the store does not have (a
    # broker that outlived its store) has no status.
    last = {row[5]: index for index, row in enumerate(rows)}
    return [("UNKNOWN" if row[5] not in found else
             str(found[row[5]][0]) if last[row[5]] == index else str(before[row[5]]))
            for index, row in enumerate(rows)]
