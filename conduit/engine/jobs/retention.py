"""Retention: prune old messages by the settings' rules every ``retention.interval``."""

from __future__ import annotations

import asyncio

from conduit.engine.services import Periodic
from conduit.engine.settings import Settings
from conduit.store import Store
from conduit.store.retention import prune_once


def retention(settings: Settings, store: Store) -> Periodic | None:
    """The pruning job, or None when no rule is set (or the interval is 0)."""
    rules = settings.retention
    if not rules.rules or rules.interval <= 0:
        return None

    async def prune() -> None:
        await asyncio.to_thread(prune_once, store.engine, rules)

    return Periodic("retention", rules.interval, prune)
