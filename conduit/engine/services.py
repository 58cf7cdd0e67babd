"""Services: what runs beside the channels for as long as the engine does.

The engine starts its services in order after the channels are deployed and stops them in the
reverse order before the channels go (Celery's bootsteps): background jobs (full-text indexing,
retention), and what the operations layer adds (the sampler, alerts, the dashboard). A job that
runs every so often is a :class:`Periodic` around one async function; a failed run is logged
and the next one comes on time.

On a PostgreSQL store a job runs once per cluster, not once per host: :class:`ClusterLeased`
starts its service only while this process holds the job's advisory lock, on a connection of
its own; when the holder dies or loses its connection, PostgreSQL releases the lock and another
host's engine takes the job over within :data:`LEASE_RETRY` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

from conduit.store.cluster import Cluster

log = structlog.get_logger(__name__)

__all__ = ["ClusterLeased", "Periodic", "Service", "leased"]

#: Seconds between two attempts to take a job's lease, and between two checks that the held
#: lease's connection is still alive.
LEASE_RETRY = 2.0


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


class ClusterLeased:
    """Runs ``service`` only while this process holds the cluster's lease ``key`` (see the
    module docstring); without it the service waits, stopped."""

    def __init__(self, service: Service, key: str, cluster: Cluster, *,
                 retry: float = LEASE_RETRY) -> None:
        self.service = service
        self.name = service.name
        self.key = key
        self.retry = retry
        self.lease = cluster.lease(key)
        #: Whether the service runs here now.
        self.running = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._hold(),
                                                            name=f"lease-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._stop_service()
        await asyncio.to_thread(self.lease.dispose)

    async def _hold(self) -> None:
        while True:
            try:
                if not self.running:
                    if await asyncio.to_thread(self.lease.try_take):
                        log.info("cluster job taken here", job=self.name, lease=self.key)
                        self.running = True
                        await self.service.start()
                elif not await asyncio.to_thread(self.lease.alive):
                    log.warning("cluster job's lease lost: stopped here", job=self.name,
                                lease=self.key)
                    await self._stop_service()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is away: try again later
                log.warning("cluster job's lease unavailable", job=self.name,
                            error=f"{type(exc).__name__}: {exc}")
                await self._stop_service()
                await asyncio.to_thread(self.lease.release)
            await asyncio.sleep(self.retry)

    async def _stop_service(self) -> None:
        if self.running:
            self.running = False
            await self.service.stop()


def leased(services: list[Service], cluster: Cluster | None, prefix: str = "job") -> list[Service]:
    """``services`` each run once per cluster on a PostgreSQL store (``cluster``); as they are
    on an embedded one (None)."""
    if cluster is None:
        return services
    return [ClusterLeased(service, f"{prefix}:{service.name}", cluster) for service in services]
