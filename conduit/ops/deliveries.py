"""Deliveries as the dashboard lists them: the failed destinations of listed messages (a
message's own error is empty when only a destination failed) and each destination's open
deliveries (in error, waiting). Both read only the rows they show: cheap however many messages
were sent."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select

from conduit.store.tables import deliveries, messages
from conduit.store.unsettled import joined

#: Delivery statuses counted as open on the channel page.
OPEN = ("ERROR", "QUEUED")
#: Message statuses an open delivery's message can have.
UNFINISHED = ("ERROR", "QUEUED", "RECEIVED", "TRANSFORMED")


def failed_destinations(engine: Any, ids: Iterable[int]) -> dict[int, list[tuple[str, str]]]:
    """message id -> [(destination, error)] of its deliveries in ERROR, in route order."""
    wanted = list(ids)
    found: dict[int, list[tuple[str, str]]] = {}
    if not wanted:
        return found
    query = (select(deliveries.c.message_id, deliveries.c.destination, deliveries.c.error)
             .where(deliveries.c.status == "ERROR", deliveries.c.message_id.in_(wanted))
             .order_by(deliveries.c.message_id, deliveries.c.position))
    with engine.connect() as connection:
        for message_id, destination, error in connection.execute(query):
            found.setdefault(message_id, []).append((destination, error or "failed"))
    return found


def open_counts(engine: Any, channel: str) -> dict[str, dict[str, int]]:
    """destination -> {"ERROR": n, "QUEUED": n} for ``channel``.

    Read from the channel's unfinished and failed messages (``ix_messages_channel_status``),
    then their deliveries by primary key: a delivery is open only while its message is not
    SENT or FILTERED (the store settles a message ERROR as soon as one delivery failed, SENT
    only once all were sent, and a requeue puts the message back to QUEUED), so a channel's
    million sent messages are never read (``store.unsettled``: PostgreSQL has no index on the
    deliveries' status)."""
    rows, side = joined(engine.dialect.name, deliveries.c.status.in_(OPEN))
    query = (select(side.c.destination, side.c.status, func.count()).select_from(rows)
             .where(messages.c.channel == channel, messages.c.status.in_(UNFINISHED))
             .group_by(side.c.destination, side.c.status))
    result: dict[str, dict[str, int]] = {}
    with engine.connect() as connection:
        for destination, status, count in connection.execute(query):
            result.setdefault(destination, {})[status] = count
    return result
