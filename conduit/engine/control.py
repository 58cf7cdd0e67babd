"""Deploying channels and steering them while the engine runs.

States of a deployed channel, as Mirth operators know them:

- ``started``: the source listens and the workers consume;
- ``paused``: the source is closed (senders keep their messages, e.g. MLLP connections are
  refused) while the queues drain;
- ``stopped``: the source is closed and the workers hold; queued messages wait in the bus and the
  store;
- ``undeployed``: gone from the engine; its queued messages wait for a later deploy.

Every channel sees the bus through its :class:`ChannelBus`, which lives as long as the engine,
across redeploys. It subscribes each queue on the real bus once and hands every envelope to the
handler of the channel's *current* runtime, so a redeploy (``deploy`` of a changed channel, or
``conduit run --watch``) swaps the runtime without losing or duplicating what is queued: the old
runtime finishes its in-flight envelopes, the new one takes the rest. It also times the handlers
(processing and delivery latency metrics) and holds them while the channel is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import structlog

from conduit.connectors.base import ConnectorContext, Receipt
from conduit.engine.bus import Bus, Envelope, Handler, source_queue
from conduit.engine.channel import Channel
from conduit.engine.errors import StartupError, port_problem
from conduit.engine.pipeline import PipelineResult
from conduit.engine.runtime import ChannelRuntime
from conduit.engine.web.metrics import ChannelMetrics, Metrics, ObservedStore

if TYPE_CHECKING:
    from conduit.engine.engine import Engine

log = structlog.get_logger(__name__)

DRAIN_TIMEOUT = 30.0
STATES = ("started", "paused", "stopped", "undeployed", "failed")


class ChannelBus:
    """One channel's view of the bus (see the module docstring)."""

    def __init__(self, bus: Bus, channel: str, metrics: ChannelMetrics) -> None:
        self._bus = bus
        self.channel = channel
        self.metrics = metrics
        self.queues: list[str] = []
        self.redeployed = False
        self.gate = asyncio.Event()
        self.gate.set()
        self._handlers: dict[str, Handler] = {}
        self._held: dict[str, int] = {}
        self._changed = asyncio.Event()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._source = source_queue(channel)
        self._dest_prefix = f"conduit.{channel}.dest."

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bus, name)

    @property
    def holds_messages(self) -> bool:
        """After the first deploy the queues already hold the channel's unfinished work, so a
        redeployed runtime must not re-queue it from the store (that would duplicate it)."""
        return bool(self._bus.holds_messages) or self.redeployed

    async def publish(self, queue: str, envelopes: list[Envelope]) -> None:
        await self._bus.publish(queue, envelopes)

    async def publish_routed(self, items: Sequence[tuple[str, Envelope]]) -> None:
        await self._bus.publish_routed(items)

    def depth(self, queue: str) -> int | None:
        """Waiting in the bus, plus taken by a consumer but held here (channel stopped)."""
        waiting = self._bus.depth(queue)
        held = self._held.get(queue, 0)
        return held if waiting is None and held else (None if waiting is None
                                                      else waiting + held)

    async def subscribe(self, queue: str, handler: Handler, *, concurrency: int = 1) -> None:
        self._handlers[queue] = handler
        self._changed.set()
        self._changed = asyncio.Event()
        if queue not in self.queues:
            self.queues.append(queue)
            await self._bus.subscribe(queue, functools.partial(self._dispatch, queue),
                                      concurrency=concurrency)

    def retire(self) -> None:
        """Forget the current runtime's handlers (envelopes wait for the next deploy)."""
        self._handlers.clear()

    async def drain(self, timeout: float = DRAIN_TIMEOUT) -> bool:
        """Wait for the handlers running now to finish; False if they did not in time."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def _dispatch(self, queue: str, envelope: Envelope) -> None:
        self._held[queue] = self._held.get(queue, 0) + 1
        try:
            while True:
                if not self.gate.is_set():
                    await self.gate.wait()
                    continue
                handler = self._handlers.get(queue)
                if handler is not None:
                    break
                await self._changed.wait()  # undeployed, or a destination removed: hold it
        finally:
            self._held[queue] -= 1
        self._in_flight += 1
        self._idle.clear()
        began = time.monotonic()
        try:
            await handler(envelope)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()
            elapsed = time.monotonic() - began
            if queue == self._source:
                self.metrics.processing.observe(elapsed)
            elif queue.startswith(self._dest_prefix):
                destination = queue[len(self._dest_prefix):].split(".", 1)[0]
                self.metrics.delivery_time(destination, elapsed)


_receiving: contextvars.ContextVar[bool] = contextvars.ContextVar("receiving", default=False)


class ObservedRuntime(ChannelRuntime):
    """A channel runtime whose answers to senders are counted by ACK code (a source that
    rejects a message itself, e.g. one it cannot frame or parse, answers AR)."""

    observed: ChannelMetrics

    async def receive(self, raw: bytes, meta: dict[str, Any] | None = None) -> Receipt:
        token = _receiving.set(True)
        try:
            receipt = await super().receive(raw, meta)
        finally:
            _receiving.reset(token)
        self.observed.ack("AA" if receipt.accepted
                          else "AR" if getattr(receipt, "permanent", False) else "AE")
        return receipt

    def _run_pipeline(self, raw: bytes) -> PipelineResult:
        began = time.monotonic()
        try:
            return super()._run_pipeline(raw)
        finally:
            self.observed.processing.observe(time.monotonic() - began)

    async def reject(self, raw: bytes, reason: str,
                     meta: dict[str, Any] | None = None) -> int | None:
        if not _receiving.get():
            self.observed.ack("AR")
        return await super().reject(raw, reason, meta)


class Controller:
    """Deploys channels into an engine and changes their state."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.metrics = Metrics()
        self.channels: dict[str, Channel] = {}
        self.buses: dict[str, ChannelBus] = {}
        self.states: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self.deployed_at: dict[str, float] = {}
        self._lock = asyncio.Lock()
        self._watch: asyncio.Task[None] | None = None

    def state(self, name: str) -> str:
        return self.states.get(name, "undeployed")

    # -- deployment ------------------------------------------------------------------------

    async def deploy(self, channel: Channel) -> None:
        """Deploy ``channel``, replacing a deployed one of the same name (queues kept)."""
        async with self._lock:
            await self._deploy(channel)

    async def _deploy(self, channel: Channel) -> None:
        engine = self.engine
        name = channel.name
        if name in engine.runtimes:
            await self._retire(name)
        bus = self.buses.get(name)
        if bus is None:
            bus = self.buses[name] = ChannelBus(engine.bus, name, self.metrics.channel(name))
        else:
            bus.redeployed = True
        context = ConnectorContext(channel=name, data_dir=engine.settings.data_dir)
        store = ObservedStore(engine.store, bus.metrics)
        runtime = ObservedRuntime(channel, cast(Any, store), cast(Bus, bus), context,
                                  workers=getattr(engine.settings, "workers", None),
                                  default_zone=getattr(engine.settings, "timezone", None))
        runtime.observed = bus.metrics
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
                where = f"{getattr(source, 'host', '')}:{getattr(source, 'port', '?')}"
                why = os.strerror(exc.errno or 0).lower()
                raise StartupError(
                    f"channel {name}: cannot listen on {where} ({why}); change 'source.port' in "
                    f"{channel.path or 'its channel file'}") from exc
            raise
        bus.gate.set()
        engine.runtimes[name] = runtime
        self.states[name] = "started"
        self.errors.pop(name, None)
        self.deployed_at[name] = time.time()
        log.info("channel deployed", channel=name, redeploy=bus.redeployed)

    async def _retire(self, name: str) -> None:
        runtime = self.engine.runtimes.pop(name)
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
            if name not in self.engine.runtimes:
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
        runtime = self.engine.runtimes.get(name)
        if runtime is None:
            raise KeyError(name)
        return runtime

    @property
    def _listeners(self) -> bool:
        return self.engine.settings.role in ("all", "listeners")

    @property
    def _workers(self) -> bool:
        return self.engine.settings.role in ("all", "workers")

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
        from conduit.engine.errors import ConfigError
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


def queue_depths(engine: Engine, channel: str) -> dict[str, int | None]:
    """Depth of every queue the channel consumes (None when the bus cannot tell)."""
    control: Controller | None = getattr(engine, "control", None)
    bus = control.buses.get(channel) if control else None
    if bus is None:
        return {}
    result: dict[str, int | None] = {}
    for queue in bus.queues:
        try:
            result[queue] = bus.depth(queue)
        except Exception:
            result[queue] = None
    return result
