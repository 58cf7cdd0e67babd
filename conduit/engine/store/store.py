"""The Store: durable record of every message and every delivery, on SQLite or PostgreSQL.

Writes go through :class:`BatchWriter` (group commits across concurrent messages); reads are plain
synchronous queries for the CLI, recovery and the management API (call them in a thread from async
code). Statuses: a message is RECEIVED, then FILTERED, QUEUED (waiting for its destinations) or
ERROR, and finally SENT once every destination has it (ERROR if any destination gave up).
A delivery (one per message and destination) is QUEUED, FILTERED, SENT or ERROR.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    bindparam,
    create_engine,
    event,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from conduit.engine.store.batch import BatchWriter
from conduit.engine.store.codec import is_delta, pack, unpack
from conduit.engine.store.tables import deliveries, events, messages

FINAL_DELIVERY = ("SENT", "ERROR", "FILTERED")
MIGRATIONS = Path(__file__).parent / "migrations"


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
    cursor.execute("PRAGMA busy_timeout=10000")
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
        stamp = now()
        row = {"channel": channel, "received_at": stamp, "updated_at": stamp, "status": status,
               "control_id": _clip(control_id, 200), "message_type": _clip(message_type, 40),
               "patient_id": _clip(patient_id, 200), "source": _clip(source, 200),
               "raw": pack(raw), "error": error,
               "correlation_id": _clip(correlation_id, 100)}
        return int(await self.writer.submit(_insert_messages, row))

    async def processed(self, message_id: int, status: str, *, transformed: bytes | None,
                        error: str | None, routes: Sequence[Route],
                        raw: bytes | None = None) -> None:
        """Record the pipeline's outcome and queue one delivery per routed destination.

        With ``raw`` (exactly the message's stored raw content), transformed and routed content
        are stored as deltas against it (see ``codec``): near-copies then cost a few bytes."""
        stamp = now()
        queued = [r for r in routes if r.content is not None and r.filtered is None]
        if status not in ("ERROR", "FILTERED"):
            status = "QUEUED" if queued else ("FILTERED" if routes else "TRANSFORMED")
        rows = [{"message_id": message_id, "destination": r.destination,
                 "status": "FILTERED" if r.filtered is not None else "QUEUED",
                 "content": pack(r.content, raw), "attempts": 0, "error": r.filtered,
                 "updated_at": stamp} for r in routes]
        message = {"m_id": message_id, "m_status": status, "m_transformed": pack(transformed, raw),
                   "m_error": error, "m_updated": stamp}
        await self.writer.submit(_record_processed, (message, rows))

    async def attempt_failed(self, message_id: int, destination: str, attempts: int,
                             error: str) -> None:
        """Note a failed attempt that will be retried (the delivery stays QUEUED)."""
        await self.writer.submit(_record_attempts, {
            "d_mid": message_id, "d_dest": destination, "d_attempts": attempts,
            "d_error": error, "d_updated": now()})

    async def delivered(self, message_id: int, destination: str, status: str, *, attempts: int,
                        response: bytes | None, error: str | None) -> str:
        """Record a delivery's final outcome; returns the message's status afterwards."""
        stamp = now()
        return str(await self.writer.submit(_record_deliveries, {
            "d_mid": message_id, "d_dest": destination, "d_status": status,
            "d_attempts": attempts, "d_response": pack(response), "d_error": error,
            "d_updated": stamp, "d_sent": stamp if status == "SENT" else None}))

    async def requeue(self, message_id: int, destinations: Sequence[str] | None,
                      detail: str) -> list[tuple[str, bytes]]:
        """Put deliveries back to QUEUED for reprocessing; returns (destination, content) pairs."""
        stamp = now()

        def write(connection: Connection) -> list[tuple[str, bytes]]:
            query = (select(deliveries.c.destination, deliveries.c.content, messages.c.raw)
                     .join(messages, messages.c.id == deliveries.c.message_id)
                     .where(deliveries.c.message_id == message_id,
                            deliveries.c.content.is_not(None)))
            if destinations:
                query = query.where(deliveries.c.destination.in_(list(destinations)))
            found = [(d, content_of(c, r)) for d, c, r in connection.execute(query)]
            for name, _ in found:
                connection.execute(
                    update(deliveries).where(deliveries.c.message_id == message_id,
                                             deliveries.c.destination == name)
                    .values(status="QUEUED", error=None, updated_at=stamp))
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
                        messages.c.raw)
                 .join(messages, messages.c.id == deliveries.c.message_id)
                 .where(messages.c.channel == channel, deliveries.c.status == "QUEUED")
                 .order_by(deliveries.c.message_id))
        with self.engine.connect() as connection:
            return [(i, d, content_of(c, r)) for i, d, c, r in connection.execute(query)]

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
            data["transformed"] = unpack(data["transformed"], raw)
            record = MessageRecord(**data)
            for d in connection.execute(
                    select(deliveries).where(deliveries.c.message_id == message_id)
                    .order_by(deliveries.c.id)):
                record.deliveries.append(DeliveryRecord(
                    destination=d.destination, status=d.status, attempts=d.attempts,
                    content=unpack(d.content, raw), response=unpack(d.response), error=d.error,
                    updated_at=d.updated_at, sent_at=d.sent_at))
            record.events = [(e.at, e.kind, e.detail) for e in connection.execute(
                select(events).where(events.c.message_id == message_id).order_by(events.c.id))]
            return record

    def correlation_id(self, message_id: int) -> str | None:
        """The correlation id a message came in with (for envelopes that lost it)."""
        with self.engine.connect() as connection:
            return connection.execute(select(messages.c.correlation_id)
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


_SUMMARY = (messages.c.id, messages.c.channel, messages.c.received_at, messages.c.updated_at,
            messages.c.status, messages.c.control_id, messages.c.message_type,
            messages.c.patient_id, messages.c.source, messages.c.error, messages.c.correlation_id)


# -- bulk writes: one prebuilt statement executed for a whole group (see batch.py) ------------

_INSERT_MESSAGE = messages.insert().returning(messages.c.id, sort_by_parameter_order=True)


def _insert_messages(connection: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    return [int(row.id) for row in connection.execute(_INSERT_MESSAGE, list(rows))]


_UPDATE_PROCESSED = update(messages).where(messages.c.id == bindparam("m_id")).values(
    status=bindparam("m_status"), transformed=bindparam("m_transformed"),
    error=bindparam("m_error"), updated_at=bindparam("m_updated"))
_DELETE_DELIVERIES = deliveries.delete().where(deliveries.c.message_id == bindparam("m_id"))


def _record_processed(connection: Connection,
                      items: Sequence[tuple[dict[str, Any], list[dict[str, Any]]]]) -> list[None]:
    connection.execute(_UPDATE_PROCESSED, [message for message, _ in items])
    routed = [message for message, rows in items if rows]
    if routed:
        # A redelivered message is processed again: its deliveries are replaced, not doubled.
        connection.execute(_DELETE_DELIVERIES, [{"m_id": m["m_id"]} for m in routed])
        connection.execute(deliveries.insert(), [row for _, rows in items for row in rows])
    return [None] * len(items)


_THIS_DELIVERY = (deliveries.c.message_id == bindparam("d_mid"),
                  deliveries.c.destination == bindparam("d_dest"))
_UPDATE_ATTEMPTS = update(deliveries).where(*_THIS_DELIVERY).values(
    attempts=bindparam("d_attempts"), error=bindparam("d_error"),
    updated_at=bindparam("d_updated"))
_UPDATE_DELIVERY = update(deliveries).where(*_THIS_DELIVERY).values(
    status=bindparam("d_status"), attempts=bindparam("d_attempts"),
    response=bindparam("d_response"), error=bindparam("d_error"),
    updated_at=bindparam("d_updated"), sent_at=bindparam("d_sent"))

_FAILED = exists().where(deliveries.c.message_id == messages.c.id,
                         deliveries.c.status == "ERROR")
_PENDING = exists().where(deliveries.c.message_id == messages.c.id,
                          deliveries.c.status.not_in(FINAL_DELIVERY))
_IDS: BindParameter[int] = bindparam("ids", expanding=True)
_SETTLE_ERROR = update(messages).where(messages.c.id.in_(_IDS), _FAILED).values(
    status="ERROR", updated_at=bindparam("stamp"))
_SETTLE_SENT = update(messages).where(messages.c.id.in_(_IDS), ~_FAILED, ~_PENDING).values(
    status="SENT", updated_at=bindparam("stamp"))
_STATUSES = select(messages.c.id, messages.c.status).where(messages.c.id.in_(_IDS))


def _record_attempts(connection: Connection, rows: Sequence[dict[str, Any]]) -> list[None]:
    connection.execute(_UPDATE_ATTEMPTS, list(rows))
    return [None] * len(rows)


def _record_deliveries(connection: Connection, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Final delivery outcomes, then each message's status from all its deliveries: ERROR if
    any failed, SENT once all are done."""
    connection.execute(_UPDATE_DELIVERY, list(rows))
    ids = sorted({row["d_mid"] for row in rows})
    stamp = rows[-1]["d_updated"]
    connection.execute(_SETTLE_ERROR, {"ids": ids, "stamp": stamp})
    connection.execute(_SETTLE_SENT, {"ids": ids, "stamp": stamp})
    statuses = {int(i): s for i, s in connection.execute(_STATUSES, {"ids": ids})}
    return [str(statuses[row["d_mid"]]) for row in rows]


def content_of(stored: bytes | None, stored_raw: bytes | None) -> bytes:
    """Stored content back as bytes (b"" for none), unpacking the raw only for a delta."""
    return unpack(stored, unpack(stored_raw) if is_delta(stored) else None) or b""


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
