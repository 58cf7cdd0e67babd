"""The event log (issue 19), like Mirth's Events view: what happened to the engine, newest
first, filtered by kind, channel, level, user and time, a page at a time. ``GET /events`` (the
dashboard) and ``GET /api/events`` (JSON). Any logged-in role: events hold no PHI (see
:mod:`conduit.engine.events`)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from conduit.ops.access import Viewer, state
from conduit.ops.auth import Principal
from conduit.ops.dashboard import page
from conduit.ops.operations import when
from conduit.store import eventlog

router = APIRouter()
#: Families of kinds offered by the page's filter before any event of them was recorded.
FAMILIES = ("alert", "breaker", "channel", "destination", "engine", "login", "messages", "user")
Level = Literal["info", "warning", "error"]


@dataclass
class EventFilters:
    kind: str | None = None
    channel: str | None = None
    level: str | None = None
    user: str | None = None
    since: str | None = None
    until: str | None = None
    before: int | None = None
    limit: int = 100

    def query(self) -> dict[str, Any]:
        """Keyword arguments of ``eventlog.listed``; ValueError for a time it cannot read."""
        start, end = when(self.since), when(self.until)
        return {"kind": self.kind, "channel": self.channel, "level": self.level,
                "user": self.user, "since": start, "until": end, "before_id": self.before,
                "limit": self.limit}

    def params(self, **changes: Any) -> dict[str, Any]:
        """The filters as a query string's parameters (empty ones left out)."""
        values = {**asdict(self), **changes}
        if values["limit"] == 100:
            del values["limit"]
        return {k: v for k, v in values.items() if v not in (None, "")}


async def _events(request: Request, filters: EventFilters) -> list[eventlog.Event]:
    query = filters.query()
    engine = state(request).engine.store.engine
    return await asyncio.to_thread(lambda: eventlog.listed(engine, **query))


def _filters(kind: str | None, channel: str | None, level: str | None, user: str | None,
             since: str | None, until: str | None, before: int | None,
             limit: int) -> EventFilters:
    return EventFilters(kind or None, channel or None, level or None, user or None,
                        since or None, until or None, before, limit)


@router.get("/api/events", tags=["events"])
async def list_events(
        request: Request, _: Principal = Viewer,
        kind: Annotated[str | None, Query(description="A kind (`channel.paused`) or its "
                                                       "family (`channel`).")] = None,
        channel: str | None = None, level: Level | None = None,
        user: Annotated[str | None, Query(description="Who acted (or tried to log in).")] = None,
        since: Annotated[str | None, Query(description="ISO time or age (`2h`).")] = None,
        until: Annotated[str | None, Query(description="ISO time or age.")] = None,
        before: Annotated[int | None, Query(description="Events older than this id (the "
                                                        "next page).")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """The event log, newest first: deploys, channel state changes, breakers, blocked
    destinations, alerts, logins, users and reprocessing. `next` pages on."""
    filters = _filters(kind, channel, level, user, since, until, before, limit)
    try:
        found = await _events(request, filters)
    except ValueError as exc:
        raise HTTPException(422, f"bad time: {exc}") from exc
    more = len(found) == filters.limit
    return {"events": [e.jsonable() for e in found],
            "next": filters.params(before=found[-1].id) if more else None}


@router.get("/events", include_in_schema=False)
async def events_page(
        request: Request, principal: Principal = Viewer, kind: str | None = None,
        channel: str | None = None, level: str | None = None, user: str | None = None,
        since: str | None = None, until: str | None = None, before: int | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> HTMLResponse:
    web = state(request)
    filters = _filters(kind, channel, level, user, since, until, before, limit)
    problem = None
    found: list[eventlog.Event] = []
    if filters.level and filters.level not in eventlog.LEVELS:
        problem, filters.level = f"no level {filters.level!r}", None
    try:
        found = await _events(request, filters)
    except ValueError as exc:
        problem = f"bad time: {exc}"
    recorded = await asyncio.to_thread(eventlog.kinds, web.engine.store.engine)
    older = filters.params(before=found[-1].id) if len(found) == filters.limit else None
    return page(request, "events.html", principal, events=found, filters=filters,
                problem=problem, older=older, levels=eventlog.LEVELS,
                kinds=sorted(set(FAMILIES) | set(recorded)),
                channels=sorted(web.engine.control.channels), known=web.engine.control.channels)
