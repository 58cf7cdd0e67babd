"""Management API: dead letters, breakers, statistics over time, engine health."""

from __future__ import annotations

import asyncio
import functools
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from conduit.core.reason import loaded
from conduit.ops.access import Operator, Viewer, remote, state
from conduit.ops.auth import Principal
from conduit.ops.health import classic_queues, readiness
from conduit.ops.operations import (
    ReprocessError,
    note_reprocessed,
    reason,
    reprocess,
    when,
)
from conduit.ops.stats import over_time
from conduit.store.tables import deliveries, messages
from conduit.store.unsettled import joined

router = APIRouter(tags=["operations"])


def dead_letters(engine: Any, channel: str | None, destination: str | None, limit: int,
                 before: int | None, *, phi: bool = False) -> list[dict[str, Any]]:
    """Deliveries that gave up (status ERROR): the store is the dead letters' durable record.
    Their errors whole with ``phi`` (operators), else without the values they quote.
    Read through the messages not SENT (PostgreSQL has no index on the deliveries' status)."""
    conditions = [deliveries.c.status == "ERROR"]
    if destination:
        conditions.append(deliveries.c.destination == destination)
    rows, side = joined(engine.dialect.name, *conditions)
    query = (select(side.c.message_id, messages.c.channel, side.c.destination, side.c.attempts,
                    side.c.error, side.c.updated_at, messages.c.control_id,
                    messages.c.message_type)
             .select_from(rows).order_by(messages.c.id.desc()).limit(limit))
    if channel:
        query = query.where(messages.c.channel == channel)
    if before:
        query = query.where(messages.c.id < before)
    with engine.connect() as connection:
        return [{**row._mapping, "updated_at": row.updated_at.isoformat(),
                 "error": reason(loaded(row.error), phi=phi)}
                for row in connection.execute(query)]


@router.get("/deadletters")
async def list_dead_letters(request: Request, principal: Principal = Viewer,
                            channel: str | None = None, destination: str | None = None,
                            before: int | None = None,
                            limit: Annotated[int, Query(ge=1, le=1000)] = 100
                            ) -> dict[str, Any]:
    """Deliveries that failed for good, newest first, with the dead-letter queue depths; their
    errors whole for operators (audited), without values for viewers."""
    web = state(request)
    engine = web.engine
    phi = principal.can("operator")
    items = await asyncio.to_thread(functools.partial(
        dead_letters, engine.store.engine, channel, destination, limit, before, phi=phi))
    if phi and items:
        await asyncio.to_thread(web.audit.record, principal.name, "search",
                                [i["message_id"] for i in items], remote(request),
                                "api deadletters")
    depths = {}
    for name in engine.runtimes:
        try:
            depths[name] = engine.bus.depth(f"conduit.{name}.dlq")
        except Exception:
            depths[name] = None
    return {"items": items, "queue_depths": depths,
            "next": items[-1]["message_id"] if len(items) == limit else None}


class Replay(BaseModel):
    channel: str
    destination: str
    ids: list[int] | None = Field(None, description="Only these messages (default: all).")
    limit: int = Field(1000, ge=1, le=100_000)


@router.post("/deadletters/replay")
async def replay_dead_letters(body: Replay, request: Request,
                              principal: Principal = Operator) -> dict[str, Any]:
    """Resend failed deliveries of one destination (its stored content)."""
    web = state(request)
    if body.ids:
        ids = body.ids
    else:
        rows = await asyncio.to_thread(dead_letters, web.engine.store.engine, body.channel,
                                       body.destination, body.limit, None)
        ids = [r["message_id"] for r in rows]
    done, failed = [], []
    for message_id in reversed(ids):  # oldest first
        try:
            await reprocess(web.engine, message_id, user=principal.name,
                            destinations=[body.destination], dead_letters=True)
            done.append(message_id)
        except ReprocessError as exc:
            failed.append({"id": message_id, "error": str(exc)})
    note_reprocessed(web.engine, principal.name, done, len(failed),
                     how=f"replayed dead letters of {body.destination}:", channel=body.channel)
    await asyncio.to_thread(web.audit.record, principal.name, "reprocess", done,
                            remote(request), f"dead letters of {body.channel}/{body.destination}")
    return {"replayed": len(done), "failed": failed}


@router.get("/breakers")
async def list_breakers(request: Request, _: Principal = Viewer) -> list[dict[str, Any]]:
    """Breaker state per destination (closed, open, half-open)."""
    engine = state(request).engine
    result = []
    for name, runtime in sorted(engine.runtimes.items()):
        states = runtime.breaker_states()
        for config in runtime.channel.destinations:
            result.append({"channel": name, "destination": config.name,
                           "state": states.get(config.name, "none")})
    return result


@router.post("/breakers/{channel}/{destination}/reset")
async def reset_breaker(channel: str, destination: str, request: Request,
                        principal: Principal = Operator) -> dict[str, Any]:
    """Close a destination's breaker so deliveries are tried again at once."""
    web = state(request)
    runtime = web.engine.runtimes.get(channel)
    if runtime is None:
        raise HTTPException(404, f"no deployed channel {channel!r}")
    try:
        if not runtime.close_breaker(destination, user=principal.name):
            raise HTTPException(409, f"destination {destination!r} has no breaker")
    except KeyError as exc:
        raise HTTPException(404, f"no destination {destination!r}") from exc
    await asyncio.to_thread(web.audit.record, principal.name, "breaker-reset", (None,),
                            remote(request), f"{channel}/{destination}")
    return {"channel": channel, "destination": destination,
            "state": runtime.breaker_states().get(destination, "closed")}


@router.get("/stats")
async def statistics(request: Request, _: Principal = Viewer,
                     since: Annotated[str, Query(description="ISO time or age")] = "24h",
                     until: str | None = None,
                     bucket: Literal["minute", "hour", "day"] = "hour",
                     channel: str | None = None) -> dict[str, Any]:
    """Messages per time bucket, channel and status (from the store), and live rates."""
    web = state(request)
    try:
        start, end = when(since), when(until)
    except ValueError as exc:
        raise HTTPException(422, f"bad time: {exc}") from exc
    assert start is not None
    if bucket == "minute" and (end or datetime.now(UTC)) - start > timedelta(days=2):
        raise HTTPException(422, "minute buckets cover at most 2 days")
    rows = await asyncio.to_thread(over_time, web.engine.store.engine, start, end, bucket,
                                   channel)
    sampler = web.extras.get("sampler")
    live = {name: {key: round(sampler.rate(name, key), 3)
                   for key in ("received", "sent", "errored", "filtered")}
            for name in web.engine.runtimes} if sampler else {}
    return {"bucket": bucket, "since": start.isoformat(), "series": rows, "per_second": live}


@router.get("/health")
async def health(request: Request, _: Principal = Viewer) -> dict[str, Any]:
    """Engine health: store and bus reachable, channel states, uptime, version."""
    from importlib.metadata import PackageNotFoundError, version


    web = state(request)
    engine = web.engine
    checks = await readiness(engine)
    try:
        release = version("conduit-engine")
    except PackageNotFoundError:  # pragma: no cover
        release = "unknown"
    return {"status": "ok" if all(checks.values()) else "degraded", "checks": checks,
            "version": release, "role": engine.settings.role,
            "uptime_seconds": round(time.time() - web.extras["started"], 1),
            "channels": {n: engine.control.state(n) for n in sorted(engine.control.channels)},
            "classic_queues": classic_queues(engine)}
