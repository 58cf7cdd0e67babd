"""Services: what runs beside the channels for as long as the engine does.

The engine starts its services in order after the channels are deployed and stops them in the
reverse order before the channels go (Celery's bootsteps): background jobs (full-text indexing,
retention), and what the operations layer adds (the sampler, alerts, the dashboard). A job that
runs every so often is a :class:`Periodic` around one async function; a failed run is logged
and the next one comes on time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)

__all__ = ["Periodic", "Service"]


class Service(Protocol):
    """Something the engine starts after its channels and stops before them."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Periodic:
    """Runs ``job`` every ``seconds`` (the first run one interval after start)."""

    def __init__(self, name: str, seconds: float, job: Callable[[], Awaitable[object]],
                 *, on_stop: Callable[[], Awaitable[None]] | None = None) -> None:
        self.name = name
        self.seconds = seconds
        self.job = job
        self._on_stop = on_stop
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._on_stop is not None:
            await self._on_stop()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.seconds)
            try:
                await self.job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("background job failed", job=self.name,
                            error=f"{type(exc).__name__}: {exc}")
