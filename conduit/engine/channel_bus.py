"""One channel's view of the bus, which lives as long as the engine, across redeploys.

It subscribes each queue on the real bus once and hands every envelope to the handler of the
channel's *current* runtime, so a redeploy (``deploy`` of a changed channel, or ``conduit run
--watch``) swaps the runtime without losing or duplicating what is queued: the old runtime
finishes its in-flight envelopes, the new one takes the rest. While the channel is stopped its
``gate`` is closed and the envelopes taken wait here (counted in ``depth``). Each runtime's
handlers are a generation: ``retire`` ends one, and ``drain`` can wait for the envelopes of the
generations before a given one while the next runtime already runs.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence

from conduit.bus import Bus, Envelope, Handler, QueueSpec
from conduit.bus.base import BusOperations, Reload

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
        #: The current runtime's generation, and envelopes in a handler per generation.
        self.generation = 0
        self._in_flight: dict[int, int] = {}
        self._finished = asyncio.Event()

    # -- the Bus protocol, passed through -------------------------------------------------

    @property
    def shared(self) -> bool:
        return self._bus.shared

    @property
    def connected(self) -> bool:
        return self._bus.connected

    @property
    def operations(self) -> BusOperations:
        """The real bus's counts (all channels')."""
        return self._bus.operations

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

    def retire(self) -> int:
        """Forget the current runtime's handlers (envelopes wait for the next deploy); returns
        the generation that ends."""
        self._handlers.clear()
        self.generation += 1
        return self.generation - 1

    async def drain(self, timeout: float = DRAIN_TIMEOUT, *, generation: int | None = None) -> bool:
        """Wait for the handlers running now (of ``generation`` and before, when given) to
        finish; False if they did not in time."""
        def busy() -> bool:
            return any(n for g, n in self._in_flight.items()
                       if generation is None or g <= generation)

        try:
            async with asyncio.timeout(timeout):
                while busy():
                    self._finished.clear()
                    await self._finished.wait()
            return True
        except TimeoutError:
            return False

    async def _dispatch(self, queue: str, envelope: Envelope) -> None:
        # the usual case, the channel running: no wait, so nothing is ever held
        handler = self._handlers.get(queue) if self.gate.is_set() else None
        if handler is None:
            handler = await self._hold(queue)
        generation = self.generation
        self._in_flight[generation] = self._in_flight.get(generation, 0) + 1
        try:
            await handler(envelope)
        finally:
            left = self._in_flight[generation] - 1
            if left:
                self._in_flight[generation] = left
            else:
                del self._in_flight[generation]
                self._finished.set()

    async def _hold(self, queue: str) -> Handler:
        """Wait, counted as held, until the channel runs with a handler for ``queue``."""
        self._held[queue] = self._held.get(queue, 0) + 1
        try:
            while True:
                if not self.gate.is_set():
                    await self.gate.wait()
                    continue
                handler = self._handlers.get(queue)
                if handler is not None:
                    return handler
                await self._changed.wait()  # undeployed, or a destination removed: hold it
        finally:
            self._held[queue] -= 1
