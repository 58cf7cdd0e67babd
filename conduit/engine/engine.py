"""The engine: builds settings, store, bus and channel runtimes at start and passes them in.

Start order: store (migrations, writer), bus, channels, then the services in order (the engine's
own jobs, then whatever was added: the operations layer adds its sampler, alerts and
dashboard); stop runs the other way. Whoever watches the engine joins :attr:`Engine.observer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Sequence

import structlog

from conduit.bus import Bus, make_bus
from conduit.core.errors import StartupError, UnavailableError
from conduit.core.observer import Observers
from conduit.core.private import private_folder
from conduit.engine.channel import Channel
from conduit.engine.control import Controller
from conduit.engine.events import EventLog
from conduit.engine.jobs import engine_jobs
from conduit.engine.runtime import ChannelRuntime
from conduit.engine.services import Service
from conduit.engine.settings import Settings
from conduit.store import Store

log = structlog.get_logger(__name__)


class Engine:
    """Every deployed channel of one process, sharing one store and one bus."""

    def __init__(self, settings: Settings, channels: Sequence[Channel],
                 store: Store | None = None, bus: Bus | None = None) -> None:
        self.settings = settings
        self.channels = list(channels)
        self.store = store or Store(settings.store, writing_process=True)
        self.bus = bus or make_bus(settings.bus_url, queue_buffer=settings.queue_buffer)
        #: Told what happens to every message; watchers join with ``observer.add``.
        self.observer = Observers()
        #: The event log: ``events.record(kind, text, channel=..., user=..., level=...)``.
        self.events = EventLog(self.store)
        #: Deploys channels and changes their state (dashboard, API, ``--watch``).
        self.control = Controller(settings, self.store, self.bus, self.observer,
                                  events=self.events)
        #: Started in order after the channels, stopped in reverse before them.
        self.services: list[Service] = engine_jobs(
            settings, self.store, self.bus,
            lambda: {name: r.channel for name, r in self.control.runtimes.items()})
        self._started: list[Service] = []

    @property
    def runtimes(self) -> dict[str, ChannelRuntime]:
        """The deployed channels' runtimes, by name."""
        return self.control.runtimes

    def service(self, name: str) -> Service | None:
        """The service called ``name``, if there is one."""
        return next((s for s in self.services if s.name == name), None)

    async def start(self) -> None:
        private_folder(self.settings.data_dir)
        mode = self.settings.data_dir.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning("the data directory is open to other users: chmod 700 it",
                        path=str(self.settings.data_dir), mode=oct(mode))
        await asyncio.to_thread(self.store.migrate)
        await self.store.writer.start()
        try:
            await self.bus.start()
        except UnavailableError as exc:  # not reachable, or the login refused: one line
            raise StartupError(str(exc)) from None
        for channel in self.channels:
            await self.control.deploy(channel)
        for service in self.services:
            await service.start()
            self._started.append(service)
        count = len(self.channels)
        self.events.record("engine.started", f"engine started: process {os.getpid()}, role "
                                             f"{self.settings.role}, {count} "
                                             f"channel{'' if count == 1 else 's'}")

    async def stop(self) -> None:
        if self._started:
            self.events.record("engine.stopped", "engine stopping")
        while self._started:
            service = self._started.pop()
            try:
                await service.stop()
            except Exception as exc:
                log.warning("service did not stop cleanly", service=service.name,
                            error=type(exc).__name__)
        await self.control.close()
        for runtime in self.runtimes.values():
            with contextlib.suppress(Exception):
                await runtime.stop()
        await self.bus.close()
        await self.events.settled()
        await self.store.close()

    async def serve(self, ready: asyncio.Event | None = None) -> None:
        """Start, then run until SIGINT/SIGTERM, then stop cleanly."""
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stopping.set)
        try:
            await self.start()
        except BaseException:
            with contextlib.suppress(Exception):  # what did start (listeners, store writer)
                await self.stop()
            raise
        if ready is not None:
            ready.set()
        try:
            await stopping.wait()
        finally:
            log.info("stopping")
            await self.stop()


def run_async(main: object) -> None:
    """Run a coroutine on uvloop when it is installed (1.3-2.5x asyncio's loop on MLLP here).

    The store writer thread needs the GIL back after each database call; with Python's default
    5 ms switch interval it queues behind the busy event loop for that long every time, which
    made group commits slow (ACK p50 17 ms). 0.5 ms keeps the hand-over short.
    """
    sys.setswitchinterval(0.0005)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        asyncio.run(main)  # type: ignore[arg-type]
    else:
        uvloop.run(main)  # type: ignore[arg-type]
