"""The in-process bus: asyncio queues, made durable by the store.

Every envelope on it mirrors a store row (a RECEIVED message or a QUEUED delivery), so after a
crash the engine rebuilds the queues from the store (``holds_messages = False``).
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from conduit.engine.bus.base import Envelope, Handler

log = structlog.get_logger(__name__)

REDELIVERY_DELAY = 1.0


class EmbeddedBus:
    holds_messages = False

    def __init__(self) -> None:
        self._queues: dict[str, asyncio.Queue[Envelope]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def _queue(self, name: str) -> asyncio.Queue[Envelope]:
        if name not in self._queues:
            self._queues[name] = asyncio.Queue()
        return self._queues[name]

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def publish(self, queue: str, envelopes: list[Envelope]) -> None:
        target = self._queue(queue)
        for envelope in envelopes:
            target.put_nowait(envelope)

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
            try:
                await handler(envelope)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # At-least-once: the handler could not finish, so the envelope comes round again.
                log.warning("redelivering", queue=name, message_id=envelope.message_id,
                            error=type(exc).__name__)
                await asyncio.sleep(REDELIVERY_DELAY)
                source.put_nowait(envelope)
