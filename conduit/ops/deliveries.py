"""Deliveries as the dashboard lists them: the failed destinations of listed messages (a
message's own error is empty when only a destination failed) and each destination's open
deliveries (in error, waiting). Both read through ``ix_deliveries_status``: cheap however many
messages were sent."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select

from conduit.store.tables import deliveries, messages

#: Delivery statuses counted as open on the channel page.
OPEN = ("ERROR", "QUEUED")


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
    """destination -> {"ERROR": n, "QUEUED": n} for ``channel``."""
    query = (select(deliveries.c.destination, deliveries.c.status, func.count())
             .join(messages, messages.c.id == deliveries.c.message_id)
             .where(deliveries.c.status.in_(OPEN), messages.c.channel == channel)
             .group_by(deliveries.c.destination, deliveries.c.status))
    result: dict[str, dict[str, int]] = {}
    with engine.connect() as connection:
        for destination, status, count in connection.execute(query):
            result.setdefault(destination, {})[status] = count
    return result
