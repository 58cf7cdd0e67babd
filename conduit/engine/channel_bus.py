"""One channel's view of the bus, which lives as long as the engine, across redeploys.

It subscribes each queue on the real bus once and hands every envelope to the handler of the
channel's *current* runtime, so a redeploy (``deploy`` of a changed channel, or ``conduit run
--watch``) swaps the runtime without losing or duplicating what is queued: the old runtime
finishes its in-flight envelopes, the new one takes the rest. While the channel is stopped its
``gate`` is closed and the envelopes taken wait here (counted in ``depth``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence

from conduit.bus import Bus, Envelope, Handler, QueueSpec
from conduit.bus.base import Reload

DRAIN_TIMEOUT = 30.0


class ChannelBus:
    """One channel's view of the bus (see the module docstring)."""

    def __init__(self, bus: Bus, channel: str) -> None:
        self._bus = bus
        self.channel = channel
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

    # -- the Bus protocol, passed through -------------------------------------------------

    @property
    def shared(self) -> bool:
        return self._bus.shared

    @property
    def connected(self) -> bool:
        return self._bus.connected

    async def start(self) -> None:
        """The engine starts the real bus; a channel's view has nothing to start."""

    async def close(self) -> None:
        """The engine closes the real bus."""

    async def declare(self, queues: Sequence[QueueSpec]) -> None:
        await self._bus.declare(queues)

    def spill(self, queue: str, reload: Reload) -> None:
        self._bus.spill(queue, reload)

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
        try:
            await handler(envelope)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()
