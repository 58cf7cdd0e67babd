"""The Store: durable record of every message and every delivery, on SQLite or PostgreSQL.

Writes go through :class:`BatchWriter` (group commits across concurrent messages); reads are plain
synchronous queries for the CLI, recovery and the management API (call them in a thread from async
code). Statuses: a message is RECEIVED, then FILTERED, QUEUED (waiting for its destinations) or
ERROR, and finally SENT once every destination has it (ERROR if any destination gave up).
A delivery (one per message and destination) is QUEUED, FILTERED, SENT or ERROR.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Connection,
    Engine,
    and_,
    case,
    create_engine,
    event,
    func,
    select,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from conduit.engine.store.batch import BUSY_TIMEOUT_MS, BatchWriter
from conduit.engine.store.codec import needs_raw, needs_transformed, pack, unpack
from conduit.engine.store.tables import (
    deliveries,
    events,
    messages,
    microseconds,
    sqlite_text,
)

FINAL_DELIVERY = ("SENT", "ERROR", "FILTERED")
MIGRATIONS = Path(__file__).parent / "migrations"
#: Raw content of messages in flight is kept (up to this many bytes, oldest dropped first) so
#: that a reply can be stored as a delta against it; a larger message is not kept.
RECENT_BYTES = 8 << 20
RECENT_MAX = 64 << 10


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class DeliveryRecord:
    destination: str
    status: str
    attempts: int
    content: bytes | None
    response: bytes | None
    error: str | None
    updated_at: datetime
    sent_at: datetime | None


@dataclass(slots=True)
class MessageRecord:
    id: int
    channel: str
    received_at: datetime
    updated_at: datetime
    status: str
    control_id: str | None
    message_type: str | None
    patient_id: str | None
    source: str | None
    error: str | None
    correlation_id: str | None = None
    raw: bytes | None = None
    transformed: bytes | None = None
    deliveries: list[DeliveryRecord] = field(default_factory=list)
    events: list[tuple[datetime, str, str | None]] = field(default_factory=list)


@dataclass(slots=True)
class Route:
    """One destination's share of a processed message."""

    destination: str
    content: bytes | None
    filtered: str | None = None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # pruning gives the disk back page by page (PRAGMA incremental_vacuum); takes effect on a
    # new database (an existing one needs one VACUUM: `conduit prune --vacuum-full`)
    cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # an ACK means durable: fsync the WAL each commit
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine tuned for the store: WAL + fsync on SQLite, a small pool on PostgreSQL."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # A pool keeps connections open: closing the last SQLite connection checkpoints the WAL,
        # which cost more than the writes themselves when done per transaction.
        engine = create_engine(url, pool_size=4, max_overflow=8,
                               connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_size=4, max_overflow=4, pool_pre_ping=True)


class Store:
    """Messages, deliveries and events; see the module docstring for the status model."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._writer: BatchWriter | None = None
        # message id -> raw content, for messages whose deliveries are not all done (in order)
        self._recent: dict[int, bytes] = {}
        self._recent_bytes = 0
        self._sqlite = self.engine.dialect.name == "sqlite"

    def _stamp(self, stamp: datetime) -> Any:
        """``stamp`` as the driver takes it for a ``Stamp`` column (see ``tables``)."""
        return microseconds(stamp) if self._sqlite else stamp

    def _now(self) -> Any:
        """The time now as the driver takes it for a ``Stamp`` column."""
        return time.time_ns() // 1000 if self._sqlite else now()

    # -- lifecycle -------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @property
    def writer(self) -> BatchWriter:
        if self._writer is None:
            self._writer = BatchWriter(self.engine)
        return self._writer

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.close()
            self._writer = None
        self.engine.dispose()

    # -- writes (async, group-committed) ---------------------------------------------------

    async def received(self, channel: str, raw: bytes, *, control_id: str | None,
                       message_type: str | None, patient_id: str | None = None,
                       source: str | None = None, status: str = "RECEIVED",
                       error: str | None = None, correlation_id: str | None = None) -> int:
        """Record an inbound message; returns its id once committed."""
        row = self._message_row(channel, raw, None, status, error, control_id, message_type,
                                patient_id, source, correlation_id)
        message_id = int(await self.writer.submit(_insert_messages, (row, [])))
        if status == "RECEIVED":
            self._remember(message_id, raw)
        return message_id

    async def accepted(self, channel: str, raw: bytes, *, control_id: str | None,
                       message_type: str | None, patient_id: str | None = None,
                       source: str | None = None, correlation_id: str | None = None,
                       status: str, transformed: bytes | None, error: str | None,
                       routes: Sequence[Route]) -> int:
        """Record an inbound message already run through the pipeline, with its deliveries, in
        one transaction: what ``received`` then ``processed`` record, at half the writes (a
        listener that runs the pipeline itself, before answering). Returns the message id."""
        status, queued = _outcome(status, routes)
        row = self._message_row(channel, raw, transformed, status, error, control_id,
                                message_type, patient_id, source, correlation_id)
        rows = _delivery_rows(routes, raw, transformed, row[2])  # stamped as the message
        message_id = int(await self.writer.submit(_insert_messages, (row, rows)))
        if queued:
            self._remember(message_id, raw)
        return message_id

    def _message_row(self, channel: str, raw: bytes, transformed: bytes | None, status: str,
                     error: str | None, control_id: str | None, message_type: str | None,
                     patient_id: str | None, source: str | None,
                     correlation_id: str | None) -> tuple[Any, ...]:
        """A new ``messages`` row as ``insert_message`` takes it (received now)."""
        stamp = now()
        control_id = _clip(control_id, 200)
        return (channel, sqlite_text(stamp) if self._sqlite else stamp, self._stamp(stamp),
                status, control_id, _clip(message_type, 40), _clip(patient_id, 200),
                _clip(source, 200), pack(raw), pack(transformed, raw), error,
                _stored_correlation(_clip(correlation_id, 100), control_id))

    def _remember(self, message_id: int, raw: bytes) -> None:
        if len(raw) > RECENT_MAX or message_id in self._recent:
            return
        recent = self._recent
        recent[message_id] = raw
        self._recent_bytes += len(raw)
        while self._recent_bytes > RECENT_BYTES:
            self._recent_bytes -= len(recent.pop(next(iter(recent))))

    def _forget(self, message_id: int) -> None:
        raw = self._recent.pop(message_id, None)
        if raw is not None:
            self._recent_bytes -= len(raw)

    async def processed(self, message_id: int, status: str, *, transformed: bytes | None,
                        error: str | None, routes: Sequence[Route],
                        raw: bytes | None = None) -> None:
        """Record the pipeline's outcome and queue one delivery per routed destination.

        With ``raw`` (exactly the message's stored raw content), transformed and routed content
        are stored as deltas against it (see ``codec``): near-copies then cost a few bytes.
        Routed content equal to the transformed content costs one byte whether or not."""
        stamp = self._now()
        status, queued = _outcome(status, routes)
        rows = [(message_id, *row) for row in _delivery_rows(routes, raw, transformed, stamp)]
        message = (status, pack(transformed, raw), error, stamp, message_id)
        if raw and queued:
            self._remember(message_id, raw)
        elif not queued:
            self._forget(message_id)
        await self.writer.submit(_record_processed, (message, rows))

    async def attempt_failed(self, message_id: int, destination: str, attempts: int,
                             error: str) -> None:
        """Note a failed attempt that will be retried (the delivery stays QUEUED)."""
        await self.writer.submit(_record_attempts, (
            attempts, error, self._now(), message_id, destination))

    async def delivered(self, message_id: int, destination: str, status: str, *, attempts: int,
                        response: bytes | None, error: str | None) -> str:
        """Record a delivery's final outcome; returns the message's status afterwards.

        A reply is stored as a delta against the message's raw content while that is at hand
        (in flight through this process), else compressed alone."""
        raw = self._recent.get(message_id)
        final = str(await self.writer.submit(_record_deliveries, (
            status, attempts, pack(response, raw, reply=True), error, self._now(),
            message_id, destination)))
        if final == "SENT":
            self._forget(message_id)
        return final

    async def requeue(self, message_id: int, destinations: Sequence[str] | None,
                      detail: str) -> list[tuple[str, bytes]]:
        """Put deliveries back to QUEUED for reprocessing; returns (destination, content) pairs."""
        stamp = now()

        def write(connection: Connection) -> list[tuple[str, bytes]]:
            query = (select(deliveries.c.destination, deliveries.c.content, messages.c.raw,
                            messages.c.transformed)
                     .join(messages, messages.c.id == deliveries.c.message_id)
                     .where(deliveries.c.message_id == message_id,
                            deliveries.c.content.is_not(None)))
            if destinations:
                query = query.where(deliveries.c.destination.in_(list(destinations)))
            found = [(d, content_of(c, r, t)) for d, c, r, t in connection.execute(query)]
            for name, _ in found:
                connection.execute(
                    update(deliveries).where(deliveries.c.message_id == message_id,
                                             deliveries.c.destination == name)
                    .values(status="QUEUED", error=None, updated_at=stamp, sent_at=KEEP_SENT_AT))
            if found:
                connection.execute(update(messages).where(messages.c.id == message_id)
                                   .values(status="QUEUED", updated_at=stamp))
            connection.execute(events.insert().values(message_id=message_id, at=stamp,
                                                      kind="reprocess", detail=detail))
            return found

        return await self.writer.run(write)

    async def event(self, message_id: int, kind: str, detail: str | None = None) -> None:
        stamp = now()
        await self.writer.run(lambda c: c.execute(events.insert().values(
            message_id=message_id, at=stamp, kind=kind, detail=detail)))

    # -- reads (sync) ----------------------------------------------------------------------

    def pending_received(self, channel: str) -> list[tuple[int, bytes]]:
        """Messages stored but never processed (recovery after a crash on the embedded bus)."""
        query = (select(messages.c.id, messages.c.raw)
                 .where(messages.c.channel == channel, messages.c.status == "RECEIVED")
                 .order_by(messages.c.id))
        with self.engine.connect() as connection:
            return [(i, unpack(r) or b"") for i, r in connection.execute(query)]

    def pending_deliveries(self, channel: str) -> list[tuple[int, str, bytes]]:
        """Deliveries queued but not finished, oldest first."""
        query = (select(deliveries.c.message_id, deliveries.c.destination, deliveries.c.content,
                        messages.c.raw, messages.c.transformed)
                 .join(messages, messages.c.id == deliveries.c.message_id)
                 .where(messages.c.channel == channel, deliveries.c.status == "QUEUED")
                 .order_by(deliveries.c.message_id))
        with self.engine.connect() as connection:
            return [(i, d, content_of(c, r, t)) for i, d, c, r, t in connection.execute(query)]

    def search(self, *, channel: str | None = None, status: str | None = None,
               since: datetime | None = None, until: datetime | None = None,
               control_id: str | None = None, message_type: str | None = None,
               patient_id: str | None = None, limit: int = 50,
               before_id: int | None = None, text: str | None = None) -> list[MessageRecord]:
        """Newest first; ``message_type`` matches a prefix (``ADT`` finds ``ADT^A01``); ``text``:
        every word occurs in the raw message (full-text index, see ``fulltext``)."""
        conditions = message_conditions(channel=channel, status=status, since=since, until=until)
        if text:
            from conduit.engine.store.fulltext import condition

            words = condition(text, self.engine)
            if words is not None:
                conditions.append(words)
        if control_id:
            conditions.append(messages.c.control_id == control_id)
        if message_type:
            conditions.append(messages.c.message_type.like(message_type.replace("_", "^") + "%"))
        if patient_id:
            conditions.append(messages.c.patient_id == patient_id)
        if before_id:
            conditions.append(messages.c.id < before_id)
        query = (select(*_SUMMARY).where(and_(True, *conditions))
                 .order_by(messages.c.id.desc()).limit(limit))
        with self.engine.connect() as connection:
            return [MessageRecord(**row._mapping) for row in connection.execute(query)]

    def get(self, message_id: int) -> MessageRecord | None:
        """One message with its content, deliveries and events."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(*_SUMMARY, messages.c.raw, messages.c.transformed)
                .where(messages.c.id == message_id)).first()
            if row is None:
                return None
            data = dict(row._mapping)
            data["raw"] = raw = unpack(data["raw"])
            data["transformed"] = transformed = unpack(data["transformed"], raw)
            record = MessageRecord(**data)
            for d in connection.execute(
                    select(deliveries).where(deliveries.c.message_id == message_id)
                    .order_by(deliveries.c.position, deliveries.c.destination)):
                record.deliveries.append(DeliveryRecord(
                    destination=d.destination, status=d.status, attempts=d.attempts,
                    content=unpack(d.content, raw, transformed=transformed),
                    response=unpack(d.response, raw), error=d.error,
                    updated_at=d.updated_at, sent_at=sent_at(d.status, d.updated_at, d.sent_at)))
            record.events = [(e.at, e.kind, e.detail) for e in connection.execute(
                select(events).where(events.c.message_id == message_id).order_by(events.c.id))]
            return record

    def correlation_id(self, message_id: int) -> str | None:
        """The correlation id a message came in with (for envelopes that lost it)."""
        with self.engine.connect() as connection:
            return connection.execute(select(_CORRELATION_ID)
                                      .where(messages.c.id == message_id)).scalar()

    def counts(self, channel: str | None = None) -> dict[str, dict[str, int]]:
        """Messages per channel and status."""
        query = select(messages.c.channel, messages.c.status, func.count()).group_by(
            messages.c.channel, messages.c.status)
        if channel:
            query = query.where(messages.c.channel == channel)
        result: dict[str, dict[str, int]] = {}
        with self.engine.connect() as connection:
            for name, status, count in connection.execute(query):
                result.setdefault(name, {})[status] = count
        return result


# The correlation id is stored only when it differs from the control id (it usually is MSH-10):
# NULL means "the control id", '' means none.
_CORRELATION_ID = func.nullif(func.coalesce(messages.c.correlation_id, messages.c.control_id),
                              "").label("correlation_id")


def _stored_correlation(correlation_id: str | None, control_id: str | None) -> str | None:
    if correlation_id is None:
        return None if control_id is None else ""
    return None if correlation_id == control_id else correlation_id


_SUMMARY = (messages.c.id, messages.c.channel, messages.c.received_at, messages.c.updated_at,
            messages.c.status, messages.c.control_id, messages.c.message_type,
            messages.c.patient_id, messages.c.source, messages.c.error, _CORRELATION_ID)


# -- bulk writes: one statement executed for a whole group (see batch.py) ---------------------
#
# The hot path talks to the driver directly: plain SQL, one parameter tuple per row, the driver's
# executemany. SQLAlchemy's compiled statements cost 2-3x the database's own work per row here
# (parameter dicts, per-row bind processing, insertmanyvalues for RETURNING). The values arrive
# ready for the driver (``Store._stamp``, ``tables.sqlite_text``). Statements are written with
# ``?`` and turned into psycopg's ``%s`` for PostgreSQL.

def _statements(dialect: str) -> dict[str, str]:
    sql = {
        "insert_message": (
            "INSERT INTO messages (channel, received_at, updated_at, status, control_id, "
            "message_type, patient_id, source, raw, transformed, error, correlation_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            + ("" if dialect == "sqlite" else " RETURNING id")),
        "update_processed": (
            "UPDATE messages SET status = ?, transformed = ?, error = ?, updated_at = ? "
            "WHERE id = ?"),
        "delete_deliveries": "DELETE FROM deliveries WHERE message_id = ?",
        "insert_delivery": (
            "INSERT INTO deliveries (message_id, destination, position, status, content, "
            "attempts, error, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
        "update_attempts": (
            "UPDATE deliveries SET attempts = ?, error = ?, updated_at = ? "
            "WHERE message_id = ? AND destination = ?"),
        # sent_at stays NULL: a SENT delivery was sent at its updated_at (see sent_at())
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
    return sql


def _unpack_status(item: str) -> tuple[int, str, str | None]:
    """One ``id status delivery-status`` of the packed statuses query."""
    message_id, status, delivery = item.split(" ")
    return int(message_id), status, None if delivery == "-" else delivery


_SQL = {"sqlite": _statements("sqlite"), "postgresql": _statements("postgresql")}


def _cursor(connection: Connection) -> Any:
    """The driver's cursor on this connection, inside its transaction (closed after use)."""
    return closing(connection.connection.driver_connection.cursor())  # type: ignore[union-attr]


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


def _execute_many(cursor: Any, dialect: str, name: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """``executemany`` of statement ``name``; on SQLite, as few multi-row statements."""
    if dialect != "sqlite" or not _MULTI_ROW or len(rows) < 2:
        cursor.executemany(_SQL[dialect][name], rows)
        return
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start:start + _ROWS_PER_STATEMENT]
        cursor.execute(_multi_row_sql(name, len(chunk[0]), len(chunk)),
                       [value for row in chunk for value in row])


def _insert_messages(connection: Connection,
                     items: Sequence[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]
                     ) -> list[int]:
    """New messages, each with its deliveries (none for a message not yet processed)."""
    ids = _insert_rows(connection, [message for message, _ in items])
    deliveries_rows = [(message_id, *row) for message_id, (_, rows) in zip(ids, items, strict=True)
                       for row in rows]
    if deliveries_rows:
        with _cursor(connection) as cursor:
            _execute_many(cursor, connection.dialect.name, "insert_delivery", deliveries_rows)
    return ids


def _insert_rows(connection: Connection, rows: Sequence[tuple[Any, ...]]) -> list[int]:
    """Insert ``messages`` rows; their ids, in order."""
    with _cursor(connection) as cursor:
        if connection.dialect.name == "sqlite":
            _execute_many(cursor, "sqlite", "insert_message", rows)
            # SQLite gives a row without a rowid the largest rowid plus one, and this
            # transaction holds the write lock: the group's ids are consecutive.
            last = int(cursor.execute("SELECT last_insert_rowid()").fetchone()[0])
            return list(range(last - len(rows) + 1, last + 1))
        cursor.executemany(_SQL["postgresql"]["insert_message"], rows, returning=True)
        ids = []
        while True:
            ids.append(int(cursor.fetchone()[0]))
            if not cursor.nextset():
                return ids


def _outcome(status: str, routes: Sequence[Route]) -> tuple[str, bool]:
    """A message's status after the pipeline, and whether any destination has it queued."""
    queued = any(r.content is not None and r.filtered is None for r in routes)
    if status not in ("ERROR", "FILTERED"):
        status = "QUEUED" if queued else ("FILTERED" if routes else "TRANSFORMED")
    return status, queued


def _delivery_rows(routes: Sequence[Route], raw: bytes | None, transformed: bytes | None,
                   stamp: Any) -> list[tuple[Any, ...]]:
    """``insert_delivery`` rows without their message id: one per route, in route order."""
    return [(r.destination, position, "FILTERED" if r.filtered is not None else "QUEUED",
             pack(r.content, raw, transformed=transformed), 0, r.filtered, stamp)
            for position, r in enumerate(routes)]


def _record_processed(connection: Connection,
                      items: Sequence[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]
                      ) -> list[None]:
    sql = _SQL[connection.dialect.name]
    with _cursor(connection) as cursor:
        cursor.executemany(sql["update_processed"], [message for message, _ in items])
        routed = [(message[-1],) for message, rows in items if rows]
        if routed:
            # A redelivered message is processed again: its deliveries are replaced, not doubled.
            cursor.executemany(sql["delete_deliveries"], routed)
            _execute_many(cursor, connection.dialect.name, "insert_delivery",
                          [row for _, rows in items for row in rows])
    return [None] * len(items)


def _record_attempts(connection: Connection, rows: Sequence[tuple[Any, ...]]) -> list[None]:
    with _cursor(connection) as cursor:
        cursor.executemany(_SQL[connection.dialect.name]["update_attempts"], rows)
    return [None] * len(rows)


def _record_deliveries(connection: Connection, rows: Sequence[tuple[Any, ...]]) -> list[str]:
    """Final delivery outcomes, then each message's status from all its deliveries: ERROR if
    any failed, SENT once all are done (otherwise it stays as it is)."""
    dialect = connection.dialect.name
    sql = _SQL[dialect]
    ids = sorted({row[5] for row in rows})
    found: dict[int, list[Any]] = {}  # id -> [status, any delivery failed, any pending]
    with _cursor(connection) as cursor:
        _execute_many(cursor, dialect, "update_delivery", rows)
        if dialect == "sqlite":
            # one row for the lot (each row fetched is a step, see _execute_many)
            cursor.execute(sql["statuses_packed"] + f"IN ({', '.join('?' * len(ids))})", ids)
            packed = cursor.fetchone()[0] or ""
            statuses = [_unpack_status(item) for item in packed.split(",") if item]
        else:
            cursor.execute(sql["statuses"] + "= ANY(%s)", (ids,))
            statuses = cursor.fetchall()
        for message_id, status, delivery in statuses:
            entry = found.setdefault(message_id, [status, False, False])
            if delivery == "ERROR":
                entry[1] = True
            elif delivery is not None and delivery not in FINAL_DELIVERY:
                entry[2] = True
        stamp = rows[-1][4]
        settled = []
        for message_id in ids:
            entry = found[message_id]
            if entry[1] or not entry[2]:
                entry[0] = "ERROR" if entry[1] else "SENT"
                settled.append((entry[0], stamp, message_id))
        if settled:
            _execute_many(cursor, dialect, "settle", settled)
    return [str(found[row[5]][0]) for row in rows]


def sent_at(status: str, updated_at: datetime, stored: datetime | None) -> datetime | None:
    """When a delivery was (last) sent: a SENT delivery stores NULL for "at its updated_at",
    saving a timestamp per row; requeueing it writes the time down first (``KEEP_SENT_AT``)."""
    if stored is None and status == "SENT":
        return updated_at
    return stored


#: ``sent_at`` for an UPDATE that moves a delivery out of SENT: keeps when it was sent.
KEEP_SENT_AT = case((deliveries.c.status == "SENT",
                     func.coalesce(deliveries.c.sent_at, deliveries.c.updated_at)),
                    else_=deliveries.c.sent_at)


def content_of(stored: bytes | None, stored_raw: bytes | None,
               stored_transformed: bytes | None = None) -> bytes:
    """Stored routed content back as bytes (b"" for none), given the message's stored raw and
    transformed content (each unpacked only when the content refers to it)."""
    raw = transformed = None
    if needs_transformed(stored):
        raw = unpack(stored_raw) if needs_raw(stored_transformed) else None
        transformed = unpack(stored_transformed, raw)
    elif needs_raw(stored):
        raw = unpack(stored_raw)
    return unpack(stored, raw, transformed=transformed) or b""


def message_conditions(*, channel: str | None = None, status: str | None = None,
                       since: datetime | None = None,
                       until: datetime | None = None) -> list[ColumnElement[bool]]:
    """WHERE terms on ``messages`` shared by searching and reprocessing: channel, the message's
    status (any case), and received at or after ``since`` and before ``until``."""
    conditions: list[ColumnElement[bool]] = []
    if channel:
        conditions.append(messages.c.channel == channel)
    if status:
        conditions.append(messages.c.status == status.upper())
    if since:
        conditions.append(messages.c.received_at >= since)
    if until:
        conditions.append(messages.c.received_at < until)
    return conditions


def _clip(value: str | None, size: int) -> str | None:
    return value[:size] if value else value
