"""Readiness: whether the store answers and the bus can publish (``/readyz``)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from conduit.engine.engine import Engine


async def readiness(engine: Engine) -> dict[str, bool]:
    def store_ok() -> bool:
        with engine.store.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True

    try:
        store = await asyncio.wait_for(asyncio.to_thread(store_ok), 5)
    except Exception:
        store = False
    bus = engine.bus.connected
    return {"store": store, "bus": bus}


def classic_queues(engine: Engine) -> list[str]:
    """The RabbitMQ queues kept classic although quorum is the default (they existed before:
    ``conduit bus migrate-queues`` moves them); empty for a bus without queue types."""
    return sorted(getattr(engine.bus, "classic_queues", ()))
