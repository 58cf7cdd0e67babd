"""Management API: the charts' series (messages, errors and queue depth over the last hour, per
channel and per destination), from the in-memory sampler; the dashboard's charts poll it."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request

from conduit.ops.access import Viewer, state
from conduit.ops.auth import Principal
from conduit.ops.charts import series
from conduit.ops.sampler import Point

router = APIRouter(tags=["operations"])


@router.get("/charts")
async def charts(request: Request, _: Principal = Viewer, channel: str | None = None,
                 minutes: Annotated[float, Query(gt=0, le=60)] = 15) -> dict[str, Any]:
    """Per-minute rates of received, filtered, sent and errored messages, queue depths, and per
    destination sent, failed and queued, one point per sample (``t``: Unix seconds)."""
    web = state(request)
    engine = web.engine
    names = sorted(engine.control.channels)
    if channel is not None:
        if channel not in engine.control.channels:
            raise HTTPException(404, f"no channel {channel!r}")
        names = [channel]
    sampler = web.extras.get("sampler")
    points: list[Point] = []
    if sampler is not None:
        since = time.time() - minutes * 60
        points = [p for p in list(sampler.history) if p.at >= since]
        if points:
            # the last point is now, so the chart does not lag a sampling interval behind
            now = Point(time.time(), sampler.snapshot(),
                        {n: m.destination_totals()
                         for n, m in list(sampler.metrics.channels.items())},
                        points[-1].depths)
            if now.at - points[-1].at > 0.5:
                points.append(now)
    wanted = {}
    for name in names:
        config = engine.control.channels[name]
        wanted[name] = [d.name for d in config.destinations]
    result = await asyncio.to_thread(series, points, wanted)
    result["interval"] = sampler.interval if sampler else None
    return result
