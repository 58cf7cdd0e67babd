"""The Bus protocol and what travels on it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True)
class Envelope:
    """One message on a queue: its store id, and the bytes the next stage needs."""

    message_id: int
    body: bytes


Handler = Callable[[Envelope], Awaitable[None]]


def source_queue(channel: str) -> str:
    return f"conduit.{channel}.source"


def dest_queue(channel: str, destination: str) -> str:
    return f"conduit.{channel}.dest.{destination}"


class Bus(Protocol):
    """Queues between stages.

    ``publish`` returns only once the envelopes are as durable as the bus makes them (broker
    confirm). A subscription calls its handler per envelope and acknowledges it when the handler
    returns; when the handler raises, the envelope is delivered again later (at-least-once).
    """

    #: True when the bus itself keeps queued envelopes across restarts (RabbitMQ); False when
    #: the engine must re-queue unfinished work from the store at start (embedded).
    holds_messages: bool

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, queue: str, envelopes: list[Envelope]) -> None: ...

    async def subscribe(self, queue: str, handler: Handler, *, concurrency: int = 1) -> None: ...

    def depth(self, queue: str) -> int | None:
        """Envelopes waiting in ``queue``, when the bus can tell cheaply."""
        ...
