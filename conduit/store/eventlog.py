"""The event log's rows (issue 19): writing one, reading them newest first with filters, and
keeping only the newest.

What is written here is operational and PHI-free by construction: channel and user names,
states, counts, message ids, file paths, reasons in their viewers' form. Never a message body,
a patient value or a password. Callers in the engine write through
:class:`conduit.engine.events.EventLog` (off the event loop, never failing the action it
records); tools (the CLI) call :func:`record` directly.

Retention: the newest :data:`KEEP` rows are kept. Every :data:`TRIM_EVERY`-th row written trims
what is older (one indexed delete), so the table stays bounded without a job or a setting, and
the message retention rules (per channel and status) are left to messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, delete, or_, select

from conduit.store.tables import event_log

LEVELS = ("info", "warning", "error")
#: Rows kept (about 150 bytes each: 100,000 is some 15 MB).
KEEP = 100_000
#: Trim once every this many rows written.
TRIM_EVERY = 1000
TEXT_MAX = 500


@dataclass(slots=True)
class Event:
    id: int
    at: datetime  # UTC, aware
    level: str
    kind: str
    channel: str | None
    user: str | None
    text: str

    def jsonable(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat(), "level": self.level,
                "kind": self.kind, "channel": self.channel, "user": self.user,
                "text": self.text}


def record(engine: Engine, kind: str, text: str, *, channel: str | None = None,
           user: str | None = None, level: str = "info", at: datetime | None = None,
           keep: int = KEEP) -> int:
    """Write one event (its own short transaction); returns its id. Blocking: call it in a
    thread from async code."""
    if level not in LEVELS:
        raise ValueError(f"event level {level!r} is not one of {', '.join(LEVELS)}")
    row = {"at": at or datetime.now(UTC), "level": level, "kind": kind[:40],
           "channel": channel[:100] if channel else None,
           "username": user[:100] if user else None, "text": (text or "")[:TEXT_MAX]}
    with engine.begin() as connection:
        key = connection.execute(event_log.insert().values(row)).inserted_primary_key
        event_id = int(key[0]) if key else 0
        if event_id and event_id % TRIM_EVERY == 0:
            connection.execute(delete(event_log).where(event_log.c.id <= event_id - keep))
    return event_id


def listed(engine: Engine, *, kind: str | None = None, channel: str | None = None,
           level: str | None = None, user: str | None = None, since: datetime | None = None,
           until: datetime | None = None, before_id: int | None = None,
           limit: int = 100) -> list[Event]:
    """Events newest first. ``kind`` matches the kind or its family (``channel`` finds
    ``channel.paused``); ``level``: exactly that level; ``since``/``until``: at or after,
    before; ``before_id``: the next page after an event of that id."""
    conditions: list[Any] = []
    if kind:
        conditions.append(or_(event_log.c.kind == kind, event_log.c.kind.startswith(
            kind.rstrip(".") + ".", autoescape=True)))
    if channel:
        conditions.append(event_log.c.channel == channel)
    if level:
        conditions.append(event_log.c.level == level)
    if user:
        conditions.append(event_log.c.username == user)
    if since:
        conditions.append(event_log.c.at >= since)
    if until:
        conditions.append(event_log.c.at < until)
    if before_id:
        conditions.append(event_log.c.id < before_id)
    query = (select(event_log).where(and_(True, *conditions))
             .order_by(event_log.c.id.desc()).limit(limit))
    with engine.connect() as connection:
        return [_event(row) for row in connection.execute(query)]


def kinds(engine: Engine) -> list[str]:
    """The kinds recorded so far (for the page's filter)."""
    with engine.connect() as connection:
        return sorted(connection.execute(select(event_log.c.kind).distinct()).scalars())


def _event(row: Any) -> Event:
    at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
    return Event(id=row.id, at=at.astimezone(UTC), level=row.level, kind=row.kind,
                 channel=row.channel, user=row.username, text=row.text)
