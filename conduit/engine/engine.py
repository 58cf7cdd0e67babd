"""The engine: builds settings, store, bus and channel runtimes at start and passes them in."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from typing import Any

import structlog

from conduit.bus import Bus, make_bus
from conduit.engine.channel import Channel
from conduit.engine.control import Controller
from conduit.engine.runtime import ChannelRuntime
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
        self.runtimes: dict[str, ChannelRuntime] = {}
        self.control = Controller(self)  # deploy, start/stop/pause, redeploy (dashboard, --watch)
        self.dashboard: Any = None  # conduit.ops.server.Dashboard when enabled

    async def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self.store.migrate)
        await self.store.writer.start()
        await self.bus.start()
        for channel in self.channels:
            await self.control.deploy(channel)
        if self.settings.dashboard.enabled:
            from conduit.ops.server import Dashboard

            self.dashboard = Dashboard(self)
            await self.dashboard.start()

    async def stop(self) -> None:
        if self.dashboard is not None:
            await self.dashboard.stop()
        await self.control.close()
        for runtime in self.runtimes.values():
            with contextlib.suppress(Exception):
                await runtime.stop()
        await self.bus.close()
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
