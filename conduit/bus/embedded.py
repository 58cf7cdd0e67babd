"""The in-process bus: asyncio queues, made durable by the store.

Every envelope on it mirrors a store row (a RECEIVED message or a QUEUED delivery), so after a
crash the engine rebuilds the queues from the store (``holds_messages = False``).

Memory stays bounded whatever waits: a queue holds at most ``capacity`` envelopes (Mirth's
"queue buffer"); beyond that it keeps only their message ids, in order, and reads them back from
the store (``spill``) as the queue drains, so a dead downstream with a day's backlog costs ids,
not messages (60,000 queued ADT messages took 154 MB before). Dead letters are only counted (the
dead-letter queue's depth): the store's ERROR deliveries are their record.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

import structlog

from conduit.bus.base import (
    BusOperations,
    DeadLetter,
    Envelope,
    Handler,
    QueueSpec,
    Reload,
    cancel_tasks,
    fanouts,
)

log = structlog.get_logger(__name__)

REDELIVERY_DELAY = 1.0
#: Envelopes a queue holds in memory; the rest wait in the store (see the module docstring).
CAPACITY = 10_000


class EmbeddedBus:
    holds_messages = False
    #: One process only: another process (``conduit reprocess``) reaches it through the store.
    shared = False
    connected = True

    def __init__(self, redelivery_delay: float = REDELIVERY_DELAY,
                 capacity: int = CAPACITY) -> None:
        self._queues: dict[str, asyncio.Queue[Envelope]] = {}
        self._dead_letter: dict[str, str] = {}
        self._dead_letters: dict[str, int] = {}  # dead-letter queue -> envelopes it was sent
        self._tasks: list[asyncio.Task[None]] = []
        self.redelivery_delay = redelivery_delay
        self.capacity = capacity
        self._reloads: dict[str, Reload] = {}
        #: queue -> ids of envelopes left in the store, oldest first; a queue is in here from
        #: the first envelope it leaves there until it has read the last one back (meanwhile
        #: every envelope published to it waits its turn in the store too: order is kept)
        self._spilled: dict[str, deque[int]] = {}
        self._refills: dict[str, asyncio.Task[None]] = {}
        self.operations = BusOperations()

    def _queue(self, name: str) -> asyncio.Queue[Envelope]:
        if name not in self._queues:
            self._queues[name] = asyncio.Queue()
        return self._queues[name]

    def spill(self, queue: str, reload: Reload) -> None:
        """Let ``queue`` leave envelopes beyond ``capacity`` in the store: ``reload`` reads them
        back. (A queue without one holds everything in memory.)"""
        self._reloads[queue] = reload

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        await cancel_tasks([*self._tasks, *self._refills.values()])
        self._tasks.clear()
        self._refills.clear()

    async def declare(self, queues: Sequence[QueueSpec]) -> None:
        for spec in queues:
            self._queue(spec.name)
            if spec.dead_letter:
                self._dead_letter[spec.name] = spec.dead_letter
                self._dead_letters.setdefault(spec.dead_letter, 0)

    async def publish(self, queue: str, envelopes: list[Envelope]) -> None:
        self.operations.publishes += len(envelopes)
        for envelope in envelopes:
            self._put(queue, envelope)

    async def publish_routed(self, items: Sequence[tuple[str, Envelope]]) -> None:
        """One publish per message and payload (``fanouts``), put on each of its queues."""
        for fanout in fanouts(items):
            self.operations.publishes += 1
            for queue, envelope in zip(fanout.queues, fanout.envelopes, strict=True):
                self._put(queue, envelope)

    def _put(self, name: str, envelope: Envelope) -> None:
        spilled = self._spilled.get(name)
        if spilled is not None:
            spilled.append(envelope.message_id)
            return
        queue = self._queue(name)
        if queue.qsize() >= self.capacity and name in self._reloads:
            self._spilled[name] = deque((envelope.message_id,))
            return
        queue.put_nowait(envelope)

    def _refill(self, name: str) -> None:
        """Once the queue is half empty, read what waits in the store back into it."""
        if (name in self._spilled and name not in self._refills
                and self._queue(name).qsize() <= self.capacity // 2):
            self._refills[name] = asyncio.get_running_loop().create_task(
                self._read_back(name), name=f"{name}-read-back")

    async def _read_back(self, name: str) -> None:
        queue, spilled, reload = self._queue(name), self._spilled[name], self._reloads[name]
        try:
            while queue.qsize() <= self.capacity // 2:
                ids = [spilled.popleft() for _ in range(min(len(spilled), self.capacity // 2))]
                try:
                    envelopes = await reload(ids)
                except asyncio.CancelledError:
                    spilled.extendleft(reversed(ids))
                    raise
                except Exception as exc:  # the store is away: try again, nothing is lost
                    spilled.extendleft(reversed(ids))
                    log.warning("queue read-back failed", queue=name, error=type(exc).__name__)
                    await asyncio.sleep(self.redelivery_delay)
                    continue
                for envelope in envelopes:
                    queue.put_nowait(envelope)
                if not spilled:  # nothing waits in the store: publish into memory again
                    del self._spilled[name]
                    return
        finally:
            del self._refills[name]

    async def subscribe(self, queue: str, handler: Handler, *, concurrency: int = 1) -> None:
        source = self._queue(queue)
        for index in range(concurrency):
            self._tasks.append(asyncio.get_running_loop().create_task(
                self._consume(queue, source, handler), name=f"{queue}#{index}"))

    def depth(self, queue: str) -> int | None:
        if queue in self._dead_letters:
            return self._dead_letters[queue]
        return self._queue(queue).qsize() + len(self._spilled.get(queue, ()))

    async def _consume(self, name: str, source: asyncio.Queue[Envelope], handler: Handler) -> None:
        operations = self.operations
        while True:
            envelope = await source.get()
            operations.deliveries += 1  # once, as a broker's: a retry in place is not another
            if name in self._spilled:
                self._refill(name)
            while True:
                try:
                    await handler(envelope)
                except asyncio.CancelledError:
                    raise
                except DeadLetter:
                    dead_letter = self._dead_letter.get(name)
                    if dead_letter:
                        self._dead_letters[dead_letter] += 1
                except Exception as exc:
                    # At-least-once: the handler could not finish, so the envelope comes round
                    # again, in place (a single consumer keeps its order).
                    log.warning("redelivering", queue=name, message_id=envelope.message_id,
                                error=type(exc).__name__)
                    await asyncio.sleep(self.redelivery_delay)
                    continue
                operations.acks += 1
                break
