"""Deploying channels and steering them while the engine runs.

States of a deployed channel, as Mirth operators know them:

- ``started``: the source listens and the workers consume;
- ``paused``: the source is closed (senders keep their messages, e.g. MLLP connections are
  refused) while the queues drain;
- ``stopped``: the source is closed and the workers hold; queued messages wait in the bus and the
  store;
- ``undeployed``: gone from the engine; its queued messages wait for a later deploy.

Each deploy and state change is recorded in the event log (``engine.events``), with the user
who asked when there was one.

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
from conduit.connectors.listening import ListeningSockets
from conduit.core.errors import StartupError, port_problem
from conduit.core.observer import Observer
from conduit.engine.channel import Channel
from conduit.engine.channel_bus import ChannelBus
from conduit.engine.events import EventLog
from conduit.engine.runtime import ChannelRuntime
from conduit.engine.settings import Settings
from conduit.store import Store
from conduit.store.cluster import SharedTokens, cluster_of

log = structlog.get_logger(__name__)

STATES = ("started", "paused", "stopped", "undeployed", "failed")


class Controller:
    """Deploys channels and changes their state; holds each deployed channel's runtime."""

    def __init__(self, settings: Settings, store: Store, bus: Bus, observer: Observer, *,
                 events: EventLog | None = None) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.observer = observer
        self.events = events or EventLog(store)
        self.runtimes: dict[str, ChannelRuntime] = {}
        self.channels: dict[str, Channel] = {}
        self.buses: dict[str, ChannelBus] = {}
        self.states: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self.deployed_at: dict[str, float] = {}
        #: Each channel's listening sockets, which its next source takes over on a redeploy.
        self.listening: dict[str, ListeningSockets] = {}
        self._lock = asyncio.Lock()
        self._watch: asyncio.Task[None] | None = None
        #: Replaced runtimes finishing their in-flight work (see ``_retire_behind``).
        self._retiring: set[asyncio.Task[None]] = set()
        cluster = cluster_of(store.engine)
        #: OAuth2 tokens shared by the cluster's processes (PostgreSQL store), else None.
        self._tokens = SharedTokens(cluster) if cluster is not None else None

    def state(self, name: str) -> str:
        return self.states.get(name, "undeployed")

    # -- deployment ------------------------------------------------------------------------

    async def deploy(self, channel: Channel, *, user: str | None = None,
                     why: str | None = None) -> None:
        """Deploy ``channel``, replacing a deployed one of the same name (queues kept);
        ``user`` asked for it, ``why`` (e.g. "file changed") goes into the event log."""
        async with self._lock:
            await self._deploy(channel, user, why)

    def _listening(self, channel: Channel) -> Channel:
        """``channel`` with its source on ``settings.listen_host`` (CONDUIT_LISTEN_HOST) when
        that is set and the source listens: in a container, every channel on 0.0.0.0."""
        host = self.settings.listen_host
        source = channel.source
        if not host or not isinstance(source, ListenerConfig) or source.host == host:
            return channel
        return channel.model_copy(update={"source": source.model_copy(update={"host": host})})

    async def _deploy(self, channel: Channel, user: str | None = None,
                      why: str | None = None) -> None:
        """Deploy ``channel``. Replacing a deployed one, the new runtime starts first: its
        workers take over the channel's queues and its source the listening socket (no sender
        is refused in between); then the old source stops (a message inside it is still
        answered) and the old runtime's in-flight deliveries drain behind, in the background."""
        channel = self._listening(channel)
        name = channel.name
        if not channel.enabled:  # known (listed, redeployable from its file), never started
            if name in self.runtimes:
                await self._retire(name)
            self.channels[name] = channel
            self.states[name] = "disabled"
            self.errors.pop(name, None)
            log.info("channel disabled, not deployed", channel=name)
            self.events.record("channel.disabled", _from("disabled, not deployed", channel, why),
                               channel=name, user=user)
            return
        old = self.runtimes.pop(name, None)
        bus = self.buses.get(name)
        if bus is None:
            bus = self.buses[name] = ChannelBus(self.bus, name)
        if old is not None:
            bus.redeployed = True
            await old.stop_polling()
            generation = bus.retire()  # new envelopes wait for the new runtime's handlers
            if old.source is not None and not (isinstance(old.channel.source, ListenerConfig)
                                               and isinstance(channel.source, ListenerConfig)):
                # a poller (files, a database) must not read beside its successor
                await old.source.stop()
                old.source = None
        listening = self.listening.setdefault(name, ListeningSockets())
        context = ConnectorContext(channel=name, data_dir=self.settings.data_dir,
                                   listening=listening, tokens=self._tokens)
        runtime = ChannelRuntime(channel, self.store, bus, context,
                                 workers=self.settings.workers, observer=self.observer,
                                 workers_running=bus.gate.is_set,
                                 default_zone=self.settings.timezone, events=self.events)
        self.channels[name] = channel
        try:
            await runtime.start(listeners=self._listeners, workers=self._workers)
        except Exception as exc:
            self.states[name] = "failed"
            self.errors[name] = f"{type(exc).__name__}: {exc}"
            self.events.record("channel.failed", _from(f"deploy failed: {self.errors[name]}",
                                                       channel, why),
                               channel=name, user=user, level="error")
            bus.retire()
            with contextlib.suppress(Exception):  # workers started before the listener failed
                await runtime.stop()
            if old is not None:
                await self._retire_behind(name, old, generation)
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
        if old is not None:
            await self._retire_behind(name, old, generation)
        log.info("channel deployed", channel=name, redeploy=bus.redeployed)
        what = "redeployed" if old is not None else "deployed"
        self.events.record(f"channel.{what}", _from(what, channel, why), channel=name,
                           user=user)

    async def _retire_behind(self, name: str, old: ChannelRuntime, generation: int) -> None:
        """A replaced runtime: its source stops now (the new one already listens), its
        in-flight deliveries finish in the background, then its connectors close."""
        if old.source is not None:
            await old.source.stop()
            old.source = None
        task = asyncio.get_running_loop().create_task(
            self._drain_then_stop(name, old, generation), name=f"{name}-retiring")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _drain_then_stop(self, name: str, old: ChannelRuntime, generation: int) -> None:
        try:
            if not await self.buses[name].drain(generation=generation):
                log.warning("in-flight work of the replaced channel did not finish in time",
                            channel=name)
        finally:
            with contextlib.suppress(Exception):
                await old.stop()

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

    async def undeploy(self, name: str, *, user: str | None = None) -> None:
        async with self._lock:
            if name not in self.runtimes:
                raise KeyError(name)
            await self._retire(name)
            self.states[name] = "undeployed"
            log.info("channel undeployed", channel=name)
            self.events.record("channel.undeployed", "undeployed (queued messages wait for "
                                                     "a later deploy)", channel=name, user=user)

    async def redeploy(self, name: str, *, user: str | None = None) -> Channel:
        """Reload a channel from its file and deploy it again."""
        from conduit.engine.loader import load_channel

        channel = self.channels.get(name)
        if channel is None or channel.path is None:
            raise KeyError(name)
        fresh = load_channel(channel.path)
        if fresh.name != name:
            raise ValueError(f"{channel.path} now names channel {fresh.name!r}, not {name!r}")
        await self.deploy(fresh, user=user)
        return fresh

    # -- state -----------------------------------------------------------------------------

    async def pause(self, name: str, *, user: str | None = None) -> None:
        """Close the source; the queues drain."""
        async with self._lock:
            runtime = self._runtime(name)
            if runtime.source is not None:
                await runtime.source.stop()
                runtime.source = None
            self.buses[name].gate.set()
            self.states[name] = "paused"
            log.info("channel paused", channel=name)
            self.events.record("channel.paused", "paused: source closed, queues draining",
                               channel=name, user=user)

    async def stop(self, name: str, *, user: str | None = None) -> None:
        """Close the source and hold the workers (in-flight messages finish)."""
        async with self._lock:
            runtime = self._runtime(name)
            self.buses[name].gate.clear()
            if runtime.source is not None:
                await runtime.source.stop()
                runtime.source = None
            self.states[name] = "stopped"
            log.info("channel stopped", channel=name)
            self.events.record("channel.stopped", "stopped: source closed, workers held",
                               channel=name, user=user)

    async def start(self, name: str, *, user: str | None = None) -> None:
        """Open the source and run the workers (from paused or stopped)."""
        await self._start(name, user, "started")

    async def resume(self, name: str, *, user: str | None = None) -> None:
        """Same as start (recorded as resumed)."""
        await self._start(name, user, "resumed")

    async def _start(self, name: str, user: str | None, what: str) -> None:
        async with self._lock:
            was = self.state(name)
            runtime = self._runtime(name)
            if runtime.source is None and self._listeners:
                await runtime.start(listeners=True, workers=False)
            self.buses[name].gate.set()
            self.states[name] = "started"
            log.info("channel started", channel=name)
            self.events.record(f"channel.{what}", f"{what} (was {was})", channel=name,
                               user=user)

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
        if self._retiring:  # replaced runtimes stop waiting for their in-flight work
            for task in list(self._retiring):
                task.cancel()
            await asyncio.gather(*self._retiring, return_exceptions=True)

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
                    await self.deploy(channel, why="file changed")
                except ConfigError as exc:
                    for problem in exc.problems:
                        log.error("channel file not deployed", problem=problem)
                except Exception as exc:
                    log.error("redeploy failed", path=str(path), error=f"{type(exc).__name__}")
                else:
                    log.info("channel file redeployed", path=str(path), channel=channel.name)


def _from(what: str, channel: Channel, why: str | None) -> str:
    """An event's text: what happened, from which file, and why."""
    text = f"{what} from {channel.path}" if channel.path else what
    return f"{text} ({why})" if why else text


def _mtime(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size
