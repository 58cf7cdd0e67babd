"""Deploying channels and steering them while the engine runs.

States of a deployed channel, as Mirth operators know them:

- ``started``: the source listens and the workers consume;
- ``paused``: the source is closed (senders keep their messages, e.g. MLLP connections are
  refused) while the queues drain;
- ``stopped``: the source is closed and the workers hold; queued messages wait in the bus and the
  store;
- ``undeployed``: gone from the engine; its queued messages wait for a later deploy.

Every channel sees the bus through its :class:`~conduit.engine.channel_bus.ChannelBus`, which
lives as long as the engine, across redeploys (see there).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterable
from pathlib import Path

import structlog

from conduit.bus import Bus
from conduit.connectors.base import ConnectorContext, ListenerConfig
from conduit.core.errors import StartupError, port_problem
from conduit.core.observer import Observer
from conduit.engine.channel import Channel
from conduit.engine.channel_bus import ChannelBus
from conduit.engine.runtime import ChannelRuntime
from conduit.engine.settings import Settings
from conduit.store import Store
from conduit.store.cluster import SharedTokens, cluster_of

log = structlog.get_logger(__name__)

STATES = ("started", "paused", "stopped", "undeployed", "failed")


class Controller:
    """Deploys channels and changes their state; holds each deployed channel's runtime."""

    def __init__(self, settings: Settings, store: Store, bus: Bus, observer: Observer) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.observer = observer
        self.runtimes: dict[str, ChannelRuntime] = {}
        self.channels: dict[str, Channel] = {}
        self.buses: dict[str, ChannelBus] = {}
        self.states: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self.deployed_at: dict[str, float] = {}
        self._lock = asyncio.Lock()
        self._watch: asyncio.Task[None] | None = None
        cluster = cluster_of(store.engine)
        #: OAuth2 tokens shared by the cluster's processes (PostgreSQL store), else None.
        self._tokens = SharedTokens(cluster) if cluster is not None else None

    def state(self, name: str) -> str:
        return self.states.get(name, "undeployed")

    # -- deployment ------------------------------------------------------------------------

    async def deploy(self, channel: Channel) -> None:
        """Deploy ``channel``, replacing a deployed one of the same name (queues kept)."""
        async with self._lock:
            await self._deploy(channel)

    async def _deploy(self, channel: Channel) -> None:
        name = channel.name
        if name in self.runtimes:
            await self._retire(name)
        bus = self.buses.get(name)
        if bus is None:
            bus = self.buses[name] = ChannelBus(self.bus, name)
        else:
            bus.redeployed = True
        context = ConnectorContext(channel=name, data_dir=self.settings.data_dir,
                                   tokens=self._tokens)
        runtime = ChannelRuntime(channel, self.store, bus, context,
                                 workers=self.settings.workers, observer=self.observer,
                                 workers_running=bus.gate.is_set,
                                 default_zone=self.settings.timezone)
        self.channels[name] = channel
        try:
            await runtime.start(listeners=self._listeners, workers=self._workers)
        except Exception as exc:
            self.states[name] = "failed"
            self.errors[name] = f"{type(exc).__name__}: {exc}"
            bus.retire()
            with contextlib.suppress(Exception):  # workers started before the listener failed
                await runtime.stop()
            if isinstance(exc, OSError) and port_problem(exc):
                source = channel.source
                where = (f"{source.host}:{source.port}" if isinstance(source, ListenerConfig)
                         else "its address")
                why = os.strerror(exc.errno or 0).lower()
                raise StartupError(
                    f"channel {name}: cannot listen on {where} ({why}); change 'source.port' in "
                    f"{channel.path or 'its channel file'}") from exc
            raise
        bus.gate.set()
        self.runtimes[name] = runtime
        self.states[name] = "started"
        self.errors.pop(name, None)
        self.deployed_at[name] = time.time()
        log.info("channel deployed", channel=name, redeploy=bus.redeployed)

    async def _retire(self, name: str) -> None:
        runtime = self.runtimes.pop(name)
        bus = self.buses[name]
        bus.gate.clear()
        if runtime.source is not None:
            await runtime.source.stop()
            runtime.source = None
        if not await bus.drain():
            log.warning("in-flight work did not finish before undeploy", channel=name)
        bus.retire()
        await runtime.stop()

    async def undeploy(self, name: str) -> None:
        async with self._lock:
            if name not in self.runtimes:
                raise KeyError(name)
            await self._retire(name)
            self.states[name] = "undeployed"
            log.info("channel undeployed", channel=name)

    async def redeploy(self, name: str) -> Channel:
        """Reload a channel from its file and deploy it again."""
        from conduit.engine.loader import load_channel

        channel = self.channels.get(name)
        if channel is None or channel.path is None:
            raise KeyError(name)
        fresh = load_channel(channel.path)
        if fresh.name != name:
            raise ValueError(f"{channel.path} now names channel {fresh.name!r}, not {name!r}")
        await self.deploy(fresh)
        return fresh

    # -- state -----------------------------------------------------------------------------

    async def pause(self, name: str) -> None:
        """Close the source; the queues drain."""
        async with self._lock:
            runtime = self._runtime(name)
            if runtime.source is not None:
                await runtime.source.stop()
                runtime.source = None
            self.buses[name].gate.set()
            self.states[name] = "paused"
            log.info("channel paused", channel=name)

    async def stop(self, name: str) -> None:
        """Close the source and hold the workers (in-flight messages finish)."""
        async with self._lock:
            runtime = self._runtime(name)
            self.buses[name].gate.clear()
            if runtime.source is not None:
                await runtime.source.stop()
                runtime.source = None
            self.states[name] = "stopped"
            log.info("channel stopped", channel=name)

    async def start(self, name: str) -> None:
        """Open the source and run the workers (from paused or stopped)."""
        async with self._lock:
            runtime = self._runtime(name)
            if runtime.source is None and self._listeners:
                await runtime.start(listeners=True, workers=False)
            self.buses[name].gate.set()
            self.states[name] = "started"
            log.info("channel started", channel=name)

    resume = start

    def _runtime(self, name: str) -> ChannelRuntime:
        runtime = self.runtimes.get(name)
        if runtime is None:
            raise KeyError(name)
        return runtime

    @property
    def _listeners(self) -> bool:
        return self.settings.role in ("all", "listeners")

    @property
    def _workers(self) -> bool:
        return self.settings.role in ("all", "workers")

    def queue_depths(self, channel: str) -> dict[str, int | None]:
        """Depth of every queue the channel consumes (None when the bus cannot tell)."""
        bus = self.buses.get(channel)
        if bus is None:
            return {}
        result: dict[str, int | None] = {}
        for queue in bus.queues:
            try:
                result[queue] = bus.depth(queue)
            except Exception:
                result[queue] = None
        return result

    # -- watching files --------------------------------------------------------------------

    def watch(self, paths: Iterable[str | Path], interval: float = 1.0) -> None:
        """Redeploy channel files when they change (``conduit run --watch``)."""
        from conduit.engine.loader import channel_files

        folders = [Path(p) for p in paths]
        seen = {p: _mtime(p) for p in channel_files(folders)}
        self._watch = asyncio.get_running_loop().create_task(
            self._watch_loop(folders, seen, interval), name="channel-watch")

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None

    async def _watch_loop(self, paths: list[Path], seen: dict[Path, tuple[int, int] | None],
                          interval: float) -> None:
        from conduit.core.errors import ConfigError
        from conduit.engine.loader import channel_files, load_channel

        while True:
            await asyncio.sleep(interval)
            for path in channel_files(paths):
                stamp = _mtime(path)
                if seen.get(path) == stamp:
                    continue
                seen[path] = stamp
                try:
                    channel = load_channel(path)
                    await self.deploy(channel)
                except ConfigError as exc:
                    for problem in exc.problems:
                        log.error("channel file not deployed", problem=problem)
                except Exception as exc:
                    log.error("redeploy failed", path=str(path), error=f"{type(exc).__name__}")
                else:
                    log.info("channel file redeployed", path=str(path), channel=channel.name)


def _mtime(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size
