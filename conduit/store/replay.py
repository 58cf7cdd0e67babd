"""Replay from the store: choose messages, put them back to QUEUED, and find what to re-publish.

Reprocessing (``conduit reprocess``) is store first, bus second, like every other write:

1. :func:`requeue` marks the chosen deliveries QUEUED (or the message RECEIVED, to run the whole
   pipeline again with ``from_raw``) and records a ``reprocess`` event on the message;
2. the envelopes are published: by the CLI itself on RabbitMQ (the running workers consume them),
   or, with the embedded bus, by the running engine, which polls the ``reprocess`` events
   (:func:`reprocess_events_since`, one indexed range query a second) and re-publishes what they
   name; an engine that is not running picks them up at its next start (recovery).

Dead letters are the deliveries with status ERROR: the worker marks ERROR exactly when it
dead-letters, so "reprocess the dead letters" is ``status ERROR`` on the delivery. A message
stored but answered ``AE`` because it could not be queued (the broker was down) is ERROR too,
with a reason that begins with :data:`NOT_ACCEPTED`: its sender was told to resend it, so a
search-chosen reprocess leaves it out unless asked (``include_not_accepted``).

:func:`stuck` finds committed work that was never published (a crash between the commit and
the publish) for the sweeper (``engine.jobs.sweeper``), which records a ``sweep`` event on
each message it puts back (:func:`mark_swept`): a message is swept at most once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, and_, exists, func, or_, select, update

from conduit.core.reason import stored_prefix
from conduit.store.codec import unpack
from conduit.store.store import KEEP_SENT_AT, Store, content_of, message_conditions, now
from conduit.store.tables import deliveries, events, messages
from conduit.store.unsettled import has_delivery

REPROCESS = "reprocess"
SWEEP = "sweep"
#: How the reason of a message answered AE for want of a queue begins (see the docstring).
NOT_ACCEPTED = "not accepted (answered AE, the sender resends): "


@dataclass(slots=True)
class Requeued:
    """What one reprocessed message needs published."""

    message_id: int
    channel: str
    raw: bytes | None = None
    """Set when the whole pipeline runs again (publish to the source queue)."""
    deliveries: list[tuple[str, bytes]] = field(default_factory=list)
    """(destination, content) to publish to the destinations' queues."""


def delivery_status(store: Store, message_id: int, destination: str) -> str | None:
    query = select(deliveries.c.status).where(deliveries.c.message_id == message_id,
                                              deliveries.c.destination == destination)
    with store.engine.connect() as connection:
        value = connection.execute(query).scalar()
    return None if value is None else str(value)


def select_messages(store: Store, *, ids: Sequence[int] = (), channel: str | None = None,
                    status: str | None = None, since: datetime | None = None,
                    until: datetime | None = None, destinations: Sequence[str] = (),
                    dead_letters: bool = False, limit: int = 100_000,
                    include_not_accepted: bool = False) -> list[int]:
    """Message ids to reprocess, oldest first. ``status`` is the message's; ``dead_letters``
    picks messages with an ERROR delivery (to ``destinations`` when given). A search leaves
    out messages answered AE (:data:`NOT_ACCEPTED`: their senders resend them) unless
    ``include_not_accepted``; ids given one by one are taken as they are."""
    conditions = message_conditions(channel=channel, status=status, since=since, until=until)
    if ids:
        conditions.append(messages.c.id.in_(list(ids)))
    elif not include_not_accepted:
        conditions.append(or_(messages.c.error.is_(None), ~or_(
            messages.c.error.startswith(NOT_ACCEPTED, autoescape=True),
            # stored as a reason (core.reason.stored): MARK, public text (the same here)
            messages.c.error.startswith(stored_prefix(NOT_ACCEPTED), autoescape=True))))
    if dead_letters:
        dead = [deliveries.c.status == "ERROR"]
        if destinations:
            dead.append(deliveries.c.destination.in_(list(destinations)))
        conditions.append(has_delivery(*dead))
    query = select(messages.c.id).where(and_(True, *conditions)).order_by(messages.c.id)
    with store.engine.connect() as connection:
        return [int(i) for i in connection.execute(query.limit(limit)).scalars()]


async def requeue(store: Store, message_id: int, *, destinations: Sequence[str] = (),
                  from_raw: bool = False, dead_letters: bool = False,
                  detail: str = "") -> Requeued | None:
    """Put one message back to work (see the module docstring); None if it does not exist or
    has nothing to send again. ``dead_letters`` limits it to its ERROR deliveries."""
    stamp = now()

    def write(connection: Connection) -> Requeued | None:
        row = connection.execute(select(messages.c.channel, messages.c.raw,
                                        messages.c.transformed)
                                 .where(messages.c.id == message_id)).first()
        if row is None:
            return None
        result = Requeued(message_id, str(row.channel))
        if from_raw:
            result.raw = unpack(row.raw) or b""
            connection.execute(update(messages).where(messages.c.id == message_id)
                               .values(status="RECEIVED", error=None, updated_at=stamp))
            what = "pipeline"
        else:
            query = select(deliveries.c.destination, deliveries.c.content).where(
                deliveries.c.message_id == message_id, deliveries.c.content.is_not(None),
                deliveries.c.status != "FILTERED")
            stored_raw, stored_transformed = row.raw, row.transformed
            if destinations:
                query = query.where(deliveries.c.destination.in_(list(destinations)))
            if dead_letters:
                query = query.where(deliveries.c.status == "ERROR")
            result.deliveries = [(d, content_of(c, stored_raw, stored_transformed))
                                 for d, c in connection.execute(query)]
            if not result.deliveries:
                return None
            names = [d for d, _ in result.deliveries]
            connection.execute(
                update(deliveries).where(deliveries.c.message_id == message_id,
                                         deliveries.c.destination.in_(names))
                .values(status="QUEUED", error=None, attempts=0, updated_at=stamp,
                        sent_at=KEEP_SENT_AT))
            connection.execute(update(messages).where(messages.c.id == message_id)
                               .values(status="QUEUED", error=None, updated_at=stamp))
            what = ", ".join(names)
        connection.execute(events.insert().values(
            message_id=message_id, at=stamp, kind=REPROCESS,
            detail=f"{detail} → {what}".strip(" →") if detail else what))
        return result

    return await store.writer.run(write)


def last_event_id(store: Store) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.max(events.c.id))).scalar() or 0)


def reprocess_events_since(store: Store, channel: str, after: int) -> tuple[int, list[int]]:
    """(newest event id seen, ids of this channel's messages reprocessed since ``after``)."""
    query = (select(events.c.id, events.c.message_id)
             .join(messages, messages.c.id == events.c.message_id)
             .where(events.c.id > after, events.c.kind == REPROCESS,
                    messages.c.channel == channel)
             .order_by(events.c.id))
    with store.engine.connect() as connection:
        rows = connection.execute(query).all()
    newest = max([after, *(int(r.id) for r in rows)])
    return newest, sorted({int(r.message_id) for r in rows})


def pending_for(store: Store, message_ids: Sequence[int]
                ) -> tuple[list[tuple[int, bytes]], list[tuple[int, str, bytes]]]:
    """Of these messages: the RECEIVED ones (raw) and the QUEUED deliveries (content)."""
    ids = list(message_ids)
    with store.engine.connect() as connection:
        received = [(int(i), unpack(r) or b"") for i, r in connection.execute(
            select(messages.c.id, messages.c.raw)
            .where(messages.c.id.in_(ids), messages.c.status == "RECEIVED")
            .order_by(messages.c.id))]
        queued = [(int(i), str(d), content_of(c, r, t)) for i, d, c, r, t in connection.execute(
            select(deliveries.c.message_id, deliveries.c.destination, deliveries.c.content,
                   messages.c.raw, messages.c.transformed)
            .join(messages, messages.c.id == deliveries.c.message_id)
            .where(deliveries.c.message_id.in_(ids), deliveries.c.status == "QUEUED")
            .order_by(deliveries.c.message_id))]
    return received, queued


@dataclass(slots=True)
class Stuck:
    """Committed work of one channel never published: messages still RECEIVED, and QUEUED
    deliveries never attempted, by destination."""

    received: list[int] = field(default_factory=list)
    queued: dict[str, list[int]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.received or self.queued)


def stuck(store: Store, channel: str, before: datetime, limit: int = 1000) -> Stuck:
    """What may have been committed but never published: untouched since ``before`` (the
    grace period), never attempted, the message not finished (nor answered AE: its status is
    ERROR), and never swept before. Oldest first, at most ``limit`` of each kind."""
    unswept = ~exists().where(events.c.message_id == messages.c.id, events.c.kind == SWEEP)
    found = Stuck()
    with store.engine.connect() as connection:
        found.received = [int(i) for i in connection.execute(
            select(messages.c.id)
            .where(messages.c.channel == channel, messages.c.status == "RECEIVED",
                   messages.c.updated_at < before, unswept)
            .order_by(messages.c.id).limit(limit)).scalars()]
        for destination, message_id in connection.execute(
                select(deliveries.c.destination, deliveries.c.message_id)
                .join(messages, messages.c.id == deliveries.c.message_id)
                .where(messages.c.channel == channel, messages.c.status == "QUEUED",
                       deliveries.c.status == "QUEUED", deliveries.c.attempts == 0,
                       deliveries.c.updated_at < before, unswept)
                .order_by(deliveries.c.message_id).limit(limit)):
            found.queued.setdefault(str(destination), []).append(int(message_id))
    return found


async def mark_swept(store: Store, message_ids: Sequence[int], detail: str) -> None:
    """Record that the sweeper put these messages back on the bus (never again)."""
    stamp = now()
    rows = [{"message_id": i, "at": stamp, "kind": SWEEP, "detail": detail}
            for i in sorted(set(message_ids))]
    if rows:
        await store.writer.run(lambda c: c.execute(events.insert(), rows))


def message_status(store: Store, message_id: int) -> str | None:
    with store.engine.connect() as connection:
        value = connection.execute(select(messages.c.status)
                                   .where(messages.c.id == message_id)).scalar()
    return None if value is None else str(value)
