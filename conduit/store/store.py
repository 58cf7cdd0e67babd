"""The Store: durable record of every message and every delivery, on SQLite or PostgreSQL.

Writes go through :class:`BatchWriter` (group commits across concurrent messages); reads are plain
synchronous queries for the CLI, recovery and the management API (call them in a thread from async
code). Statuses: a message is RECEIVED, then FILTERED, QUEUED (waiting for its destinations) or
ERROR, and finally SENT once every destination has it (ERROR if any destination gave up).
A delivery (one per message and destination) is QUEUED, FILTERED, SENT or ERROR.

Reasons and errors (``error`` columns) are kept with their viewers' form
(:func:`conduit.core.reason.stored`) and read back as :class:`~conduit.core.reason.Reason`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Connection,
    and_,
    case,
    false,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

from conduit.core.errors import StartupError
from conduit.core.reason import Reason, loaded, stored
from conduit.store import writes
from conduit.store.batch import BatchWriter
from conduit.store.codec import needs_raw, needs_transformed, unpack
from conduit.store.connect import make_engine, unreachable
from conduit.store.tables import (
    deliveries,
    events,
    messages,
    microseconds,
    search_fields,
    sqlite_now,
)
from conduit.store.unsettled import joined

#: A field path without a component (``OBR-3``): also matches its first component's row.
_WHOLE_FIELD = re.compile(r"^[A-Z][A-Z0-9]{2}(\[\d+\])?-\d+$")
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
    error: Reason | None
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
    error: Reason | None
    correlation_id: str | None = None
    raw: bytes | None = None
    transformed: bytes | None = None
    deliveries: list[DeliveryRecord] = field(default_factory=list)
    events: list[tuple[datetime, str, str | None]] = field(default_factory=list)


@dataclass(slots=True)
class Route:
    """One destination's share of a processed message: ``content`` to send, or ``filtered``
    (its when-filter's reason). Made by the pipeline, stored as the delivery's row."""

    destination: str
    content: bytes | None
    filtered: str | None = None


class Store:
    """Messages, deliveries and events; see the module docstring for the status model."""

    def __init__(self, url: str, *, writing_process: bool = False) -> None:
        """``writing_process``: on SQLite (a file), the hot path's writes go to a process of
        their own (``process``); the engine asks for it, tools and tests need not."""
        self.url = url
        self.engine = make_engine(url)
        self._sqlite = self.engine.dialect.name == "sqlite"
        self._writing_process = writing_process and self._sqlite and self.shared
        self._writer: BatchWriter | None = None
        # message id -> raw content, for messages whose deliveries are not all done (in order)
        self._recent: dict[int, bytes] = {}
        self._recent_bytes = 0
        #: Channels whose messages the full-text indexer takes (``search: {full_text: true}``),
        #: told by the channels' runtimes.
        self.full_text_channels: set[str] = set()

    @property
    def shared(self) -> bool:
        """Whether another process opening ``url`` sees this store (not an in-memory SQLite
        database): what a helper process (writer, indexer) needs."""
        return ":memory:" not in self.url

    def _stamp(self, stamp: datetime) -> Any:
        """``stamp`` as the driver takes it for a ``Stamp`` column (see ``tables``)."""
        return microseconds(stamp) if self._sqlite else stamp

    def _now(self) -> Any:
        """The time now as the driver takes it for a ``Stamp`` column."""
        return time.time_ns() // 1000 if self._sqlite else now()

    # -- lifecycle -------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent); a database that does
        not exist or cannot be reached is a :class:`StartupError` of one line."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except OperationalError as exc:
            raise StartupError(unreachable(self.url, exc)) from None

    def has_schema(self) -> bool:
        """Whether the store holds Conduit's tables (False for a new, empty database); a
        database that cannot be reached is a :class:`StartupError` of one line."""
        from sqlalchemy import inspect

        try:
            with self.engine.connect() as connection:
                return bool(inspect(connection).has_table("messages"))
        except OperationalError as exc:
            raise StartupError(unreachable(self.url, exc)) from None

    @property
    def writer(self) -> BatchWriter:
        if self._writer is None:
            self._writer = BatchWriter(
                self.engine, process_url=self.url if self._writing_process else None)
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
                       error: str | None = None, correlation_id: str | None = None,
                       search: Sequence[tuple[str, str]] = ()) -> int:
        """Record an inbound message (with its ``search`` fields: ``(name, value)`` pairs);
        returns its id once committed.

        Its raw content is not kept at hand (``_recent``): whoever processes it passes it to
        ``processed`` (a listeners-only process never would, and would keep it forever)."""
        row = self._message_row(channel, raw, None, status, error, control_id, message_type,
                                patient_id, source, correlation_id)
        return int(await self.writer.submit(
            writes.insert_messages, (row, [], _search_rows(search))))

    async def accepted(self, channel: str, raw: bytes, *, control_id: str | None,
                       message_type: str | None, patient_id: str | None = None,
                       source: str | None = None, correlation_id: str | None = None,
                       status: str, transformed: bytes | None, error: str | None,
                       routes: Sequence[Route], search: Sequence[tuple[str, str]] = ()) -> int:
        """Record an inbound message already run through the pipeline, with its deliveries, in
        one transaction: what ``received`` then ``processed`` record, at half the writes (a
        listener that runs the pipeline itself, before answering). Returns the message id."""
        status, queued = _outcome(status, routes)
        row = self._message_row(channel, raw, transformed, status, error, control_id,
                                message_type, patient_id, source, correlation_id)
        rows = _delivery_rows(routes, row[2])  # stamped as the message
        message_id = int(await self.writer.submit(
            writes.insert_messages, (row, rows, _search_rows(search))))
        if queued:
            self._remember(message_id, raw)
        return message_id

    def _message_row(self, channel: str, raw: bytes, transformed: bytes | None, status: str,
                     error: str | None, control_id: str | None, message_type: str | None,
                     patient_id: str | None, source: str | None,
                     correlation_id: str | None) -> tuple[Any, ...]:
        """A new ``messages`` row as ``writes.insert_messages`` takes it (received now; raw and
        transformed content as they are: the write compresses them)."""
        received: Any
        stamp: Any
        if self._sqlite:
            received, stamp = sqlite_now()
        else:
            received = stamp = now()
        control_id = _clip(control_id, 200)
        return (channel, received, stamp, status, control_id, _clip(message_type, 40),
                _clip(patient_id, 200), _clip(source, 200), raw, transformed, stored(error),
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
        rows = _delivery_rows(routes, stamp)
        message = (status, transformed, stored(error), stamp, message_id)
        if raw and queued:
            self._remember(message_id, raw)
        elif not queued:
            self._forget(message_id)
        await self.writer.submit(writes.record_processed, (message, rows, raw))

    async def attempt_failed(self, message_id: int, destination: str, attempts: int,
                             error: str) -> None:
        """Note a failed attempt that will be retried (the delivery stays QUEUED)."""
        await self.writer.submit(writes.record_attempts, (
            attempts, stored(error), self._now(), message_id, destination))

    async def delivered(self, message_id: int, destination: str, status: str, *, attempts: int,
                        response: bytes | None, error: str | None) -> str:
        """Record a delivery's final outcome; returns the message's status afterwards.

        A reply is stored as a delta against the message's raw content while that is at hand
        (in flight through this process), else compressed alone."""
        raw = self._recent.get(message_id) if response else None  # no reply: no delta
        final = str(await self.writer.submit(writes.record_deliveries, (
            status, attempts, response, stored(error), self._now(), message_id, destination,
            raw)))
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

    def pending(self, channel: str) -> tuple[list[int], dict[str, list[int]]]:
        """Ids of the messages stored but never processed, and of each destination's deliveries
        queued but not finished, oldest first: what a crash left unfinished on the embedded bus
        (its content is read back a part at a time: ``queued``)."""
        received = (select(messages.c.id)
                    .where(messages.c.channel == channel, messages.c.status == "RECEIVED")
                    .order_by(messages.c.id))
        rows, side = joined(self.engine.dialect.name, deliveries.c.status == "QUEUED")
        queued = (select(side.c.destination, side.c.message_id).select_from(rows)
                  .where(messages.c.channel == channel).order_by(messages.c.id))
        by_destination: dict[str, list[int]] = {}
        with self.engine.connect() as connection:
            ids = list(connection.execute(received).scalars())
            for destination, message_id in connection.execute(queued):
                by_destination.setdefault(destination, []).append(message_id)
        return ids, by_destination

    def queued(self, channel: str, destination: str | None,
               ids: Sequence[int]) -> list[tuple[int, bytes, str | None]]:
        """``(id, content, correlation id)`` of these messages still RECEIVED (``destination``
        None) or of their deliveries to ``destination`` still QUEUED, in the order of ``ids``:
        what a bus that keeps only so many envelopes in memory reads back (see ``embedded``)."""
        found: dict[int, tuple[int, bytes, str | None]] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(ids), 500):  # SQLite's bound on parameters a statement
                chunk = ids[start:start + 500]
                if destination is None:
                    query = (select(messages.c.id, messages.c.raw, _CORRELATION_ID)
                             .where(messages.c.id.in_(chunk), messages.c.channel == channel,
                                    messages.c.status == "RECEIVED"))
                    found.update((i, (i, unpack(r) or b"", c))
                                 for i, r, c in connection.execute(query))
                else:
                    query = (select(deliveries.c.message_id, deliveries.c.content,
                                    messages.c.raw, messages.c.transformed, _CORRELATION_ID)
                             .join(messages, messages.c.id == deliveries.c.message_id)
                             .where(deliveries.c.message_id.in_(chunk),
                                    messages.c.channel == channel,
                                    deliveries.c.destination == destination,
                                    deliveries.c.status == "QUEUED"))
                    found.update((row[0], (row[0], content_of(*row[1:4]), row[4]))
                                 for row in connection.execute(query))
        return [found[i] for i in ids if i in found]

    def search(self, *, channel: str | None = None, status: str | None = None,
               since: datetime | None = None, until: datetime | None = None,
               control_id: str | None = None, message_type: str | None = None,
               patient_id: str | None = None, limit: int = 50,
               before_id: int | None = None, text: str | None = None,
               fields: Sequence[tuple[str, str]] = ()) -> list[MessageRecord]:
        """Newest first; ``message_type`` matches a prefix (``ADT`` finds ``ADT^A01``); ``text``:
        every word occurs in the raw message (full-text index, see ``fulltext``: only channels
        with ``search: {full_text: true}`` are indexed); ``fields``: ``(name, value)`` pairs,
        each a search field the message has with exactly that value (``OBR-3`` also finds the
        field stored as ``OBR-3.1``)."""
        conditions = message_conditions(channel=channel, status=status)
        newest_first: ColumnElement[int] = messages.c.id
        source: FromClause = messages
        for name, value in fields:
            names = [name, f"{name}.1"] if _WHOLE_FIELD.match(name) else [name]
            if (source is messages and len(names) == 1
                    and self.engine.dialect.name == "sqlite"):
                # SQLite lists every id of an ``IN`` subquery before the first page (the
                # authority all messages share: 0.2-0.3 s at a million); joined, it walks the
                # (name, value, message_id) index back from the newest and stops at a page
                source = search_fields.join(messages, messages.c.id == search_fields.c.message_id)
                newest_first = search_fields.c.message_id
                conditions += [search_fields.c.name == name, search_fields.c.value == value]
                continue
            conditions.append(messages.c.id.in_(
                select(search_fields.c.message_id).where(search_fields.c.name.in_(names),
                                                         search_fields.c.value == value)))
        if text:
            from conduit.store.fulltext import condition

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
            conditions.append(newest_first < before_id)
        with self.engine.connect() as connection:
            if since is not None or until is not None:
                conditions.extend(_received_between(connection, since, until))
            query = (select(*_SUMMARY).select_from(source).where(and_(True, *conditions))
                     .order_by(newest_first.desc()).limit(limit))
            return [_record(row._mapping) for row in connection.execute(query)]

    def get(self, message_id: int) -> MessageRecord | None:
        """One message with its content, deliveries and events."""
        return self.get_many([message_id])[0]

    def get_many(self, ids: Sequence[int]) -> list[MessageRecord | None]:
        """These messages with their content, deliveries and events, in the order of ``ids``
        (None for one that is gone): three queries per 500 ids, not three per message (an
        export's page of 500 took 0.7 s one message at a time)."""
        found: dict[int, MessageRecord] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(ids), 500):  # SQLite's bound on parameters a statement
                chunk = list(ids[start:start + 500])
                for row in connection.execute(select(*_SUMMARY, messages.c.raw,
                                                     messages.c.transformed)
                                              .where(messages.c.id.in_(chunk))):
                    data = dict(row._mapping)
                    data["raw"] = unpack(data["raw"])
                    data["transformed"] = unpack(data["transformed"], data["raw"])
                    found[data["id"]] = _record(data)
                for d in connection.execute(
                        select(deliveries).where(deliveries.c.message_id.in_(chunk))
                        .order_by(deliveries.c.message_id, deliveries.c.position,
                                  deliveries.c.destination)):
                    record = found[d.message_id]
                    raw, transformed = record.raw, record.transformed
                    record.deliveries.append(DeliveryRecord(
                        destination=d.destination, status=d.status, attempts=d.attempts,
                        content=unpack(d.content, raw, transformed=transformed),
                        response=unpack(d.response, raw), error=loaded(d.error),
                        updated_at=d.updated_at,
                        sent_at=sent_at(d.status, d.updated_at, d.sent_at)))
                for e in connection.execute(select(events).where(events.c.message_id.in_(chunk))
                                            .order_by(events.c.id)):
                    found[e.message_id].events.append((e.at, e.kind, e.detail))
        return [found.get(i) for i in ids]

    def correlation_id(self, message_id: int) -> str | None:
        """The correlation id a message came in with (for envelopes that lost it)."""
        with self.engine.connect() as connection:
            return connection.execute(select(_CORRELATION_ID)
                                      .where(messages.c.id == message_id)).scalar()

    def fulltext_lag(self) -> tuple[int, float]:
        """Messages the full-text indexer has not walked yet, and how many seconds the oldest
        of them waits (``fulltext.lag``)."""
        from conduit.store.fulltext import lag

        with self.engine.connect() as connection:
            return lag(connection)

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


# -- what the bulk writes (``writes``) take -----------------------------------------------

def _outcome(status: str, routes: Sequence[Route]) -> tuple[str, bool]:
    """A message's status after the pipeline, and whether any destination has it queued."""
    queued = any(r.content is not None and r.filtered is None for r in routes)
    if status not in ("ERROR", "FILTERED"):
        status = "QUEUED" if queued else ("FILTERED" if routes else "TRANSFORMED")
    return status, queued


def _delivery_rows(routes: Sequence[Route], stamp: Any) -> list[tuple[Any, ...]]:
    """``insert_delivery`` rows without their message id: one per route, in route order (the
    content as it is: the write compresses it)."""
    return [(r.destination, position, "FILTERED" if r.filtered is not None else "QUEUED",
             r.content, 0, stored(r.filtered), stamp) for position, r in enumerate(routes)]


def _record(row: Any) -> MessageRecord:
    data = dict(row)
    data["error"] = loaded(data["error"])
    return MessageRecord(**data)


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
    # SQLite keeps ``received_at`` as UTC text and SQLAlchemy binds a datetime's wall-clock
    # digits without its offset: every bound time is turned into UTC first (naive means UTC)
    if since:
        conditions.append(messages.c.received_at >= utc(since))
    if until:
        conditions.append(messages.c.received_at < utc(until))
    return conditions


#: A time range of up to this many messages is read off the received-at index whatever comes
#: after it: walking back from the newest would pass over the whole store when the range holds
#: fewer than a page.
RANGE_READ = 10_000


def _received_between(connection: Connection, since: datetime | None,
                      until: datetime | None) -> list[ColumnElement[bool]]:
    """WHERE terms for messages received in [``since``, ``until``), shaped for a newest-first
    page. A page is found by walking back from the newest message past every one received
    after ``until`` (cheap when few were), or by reading the range's ids off the received-at
    index and walking back inside them only (cheap when the range is small): whichever passes
    over fewer. The planners do not know that ids follow arrival: PostgreSQL walked back over
    933,000 messages for a day a month ago (0.8 s at a million), SQLite read and sorted a whole
    month for a range ending yesterday (0.8 s). Three index probes estimate both counts; the
    ids read off the index are exact."""
    terms = message_conditions(since=since, until=until)
    newest = connection.execute(select(func.max(messages.c.id))).scalar()
    if newest is None:
        return terms

    def first_id(moment: datetime | None) -> int | None:  # of the first received at or after
        query = select(messages.c.id).order_by(messages.c.received_at).limit(1)
        if moment is not None:
            query = query.where(messages.c.received_at >= utc(moment))
        return connection.execute(query).scalar()

    start = first_id(since)
    if start is None:
        return [false()]  # nothing received since ``since``
    after = first_id(until) if until is not None else None
    end = newest + 1 if after is None else after
    if end - start <= max(newest + 1 - end, RANGE_READ):
        inside = (select(messages.c.id).where(*terms)
                  .offset(0).subquery())  # OFFSET 0: read the range, not the table by id
        low, high = connection.execute(select(func.min(inside.c.id),
                                              func.max(inside.c.id))).one()
        return [false()] if low is None else [*terms, messages.c.id.between(low, high)]
    if connection.dialect.name != "sqlite":
        return terms
    # a unary plus keeps SQLite off the received-at index: it walks back by id instead
    received = literal_column("+messages.received_at", messages.c.received_at.type)
    return ([received >= utc(since)] if since else []) + (
        [received < utc(until)] if until else [])


def utc(value: datetime) -> datetime:
    """``value`` as the same instant in UTC (a naive time is taken as UTC already)."""
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _search_rows(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Search field rows for ``insert_messages``: clipped to the columns, empty values and
    repeats dropped (the table's key is message, name and value)."""
    rows = {(name[:40], value[:200]) for name, value in pairs if value}
    return sorted(rows)


def _clip(value: str | None, size: int) -> str | None:
    return value[:size] if value else value
