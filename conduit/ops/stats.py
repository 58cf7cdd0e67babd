"""Statistics over time from the store: messages per time bucket and status (any restart-proof
history the in-memory sampler cannot give). Uses the ``received_at`` index for the range."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from conduit.store.tables import messages

BUCKETS = {"minute": 16, "hour": 13, "day": 10}


def over_time(engine: Engine, since: datetime, until: datetime | None, bucket: str,
              channel: str | None = None) -> list[dict[str, Any]]:
    """``[{"at": "2026-11-23T10", "channel": ..., "status": ..., "count": n}]`` oldest first."""
    if engine.dialect.name == "sqlite":
        # SQLAlchemy keeps SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' text
        key = func.substr(messages.c.received_at, 1, BUCKETS[bucket])
    else:
        key = func.to_char(func.date_trunc(bucket, func.timezone("UTC", messages.c.received_at)),
                           {"minute": "YYYY-MM-DD HH24:MI", "hour": "YYYY-MM-DD HH24",
                            "day": "YYYY-MM-DD"}[bucket])
    query = (select(key.label("at"), messages.c.channel, messages.c.status,
                    func.count().label("count"))
             .where(messages.c.received_at >= since)
             .group_by(key, messages.c.channel, messages.c.status).order_by(key))
    if until is not None:
        query = query.where(messages.c.received_at < until)
    if channel:
        query = query.where(messages.c.channel == channel)
    with engine.connect() as connection:
        return [{"at": str(at).replace(" ", "T"), "channel": name, "status": status,
                 "count": count} for at, name, status, count in connection.execute(query)]
