"""The in-process bus: asyncio queues, made durable by the store.

Every envelope on it mirrors a store row (a RECEIVED message or a QUEUED delivery), so after a
crash the engine rebuilds the queues from the store (``holds_messages = False``). Dead letters are
kept in memory for inspection only; the store's ERROR deliveries are their durable record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog

from conduit.engine.bus.base import DeadLetter, Envelope, Handler, QueueSpec, cancel_tasks

log = structlog.get_logger(__name__)

REDELIVERY_DELAY = 1.0


class EmbeddedBus:
    holds_messages = False
    #: One process only: another process (``conduit reprocess``) reaches it through the store.
    shared = False
    connected = True

    def __init__(self, redelivery_delay: float = REDELIVERY_DELAY) -> None:
        self._queues: dict[str, asyncio.Queue[Envelope]] = {}
        self._dead_letter: dict[str, str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.redelivery_delay = redelivery_delay

    def _queue(self, name: str) -> asyncio.Queue[Envelope]:
        if name not in self._queues:
            self._queues[name] = asyncio.Queue()
        return self._queues[name]

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        await cancel_tasks(self._tasks)
        self._tasks.clear()

    async def declare(self, queues: Sequence[QueueSpec]) -> None:
        for spec in queues:
            self._queue(spec.name)
            if spec.dead_letter:
                self._dead_letter[spec.name] = spec.dead_letter
                self._queue(spec.dead_letter)

    async def publish(self, queue: str, envelopes: list[Envelope]) -> None:
        target = self._queue(queue)
        for envelope in envelopes:
            target.put_nowait(envelope)

    async def publish_routed(self, items: Sequence[tuple[str, Envelope]]) -> None:
        for queue, envelope in items:
            self._queue(queue).put_nowait(envelope)

    async def subscribe(self, queue: str, handler: Handler, *, concurrency: int = 1) -> None:
        source = self._queue(queue)
        for index in range(concurrency):
            self._tasks.append(asyncio.get_running_loop().create_task(
                self._consume(queue, source, handler), name=f"{queue}#{index}"))

    def depth(self, queue: str) -> int | None:
        return self._queue(queue).qsize()

    async def _consume(self, name: str, source: asyncio.Queue[Envelope], handler: Handler) -> None:
        while True:
            envelope = await source.get()
            while True:
                try:
                    await handler(envelope)
                except asyncio.CancelledError:
                    raise
                except DeadLetter:
                    dead_letter = self._dead_letter.get(name)
                    if dead_letter:
                        self._queue(dead_letter).put_nowait(envelope)
                except Exception as exc:
                    # At-least-once: the handler could not finish, so the envelope comes round
                    # again, in place (a single consumer keeps its order).
                    log.warning("redelivering", queue=name, message_id=envelope.message_id,
                                error=type(exc).__name__)
                    await asyncio.sleep(self.redelivery_delay)
                    continue
                break
