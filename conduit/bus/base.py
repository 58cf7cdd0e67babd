"""The Bus protocol and what travels on it.

Queues, per channel (channel names never contain dots, so the names parse back)::

    conduit.<channel>.source               raw messages waiting for the pipeline
    conduit.<channel>.dest.<name>          one destination's deliveries
    conduit.<channel>.dest.<name>.p<i>     partition i of a ``partition_by`` destination
    conduit.<channel>.dlq                  dead letters of every destination of the channel

A handler acknowledges an envelope by returning. When it raises :class:`DeadLetter` the envelope
goes to the channel's dead-letter queue; when it raises anything else the envelope is handed to it
again after a pause, in place, so a single consumer keeps its order (at-least-once).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Envelope:
    """One message on a queue: its store id, the bytes the next stage needs, and the correlation
    id it came in with (the sender's ``X-Request-Id``, MSH-10 or a new one; None when rebuilt
    from the store or carried by a bus that does not keep it: the store has it)."""

    message_id: int
    body: bytes
    correlation_id: str | None = None
    #: ``body`` already parsed (a :class:`~conduit.hl7.message.Message`), when the envelope never
    #: left this process: saves the next stage parsing it again. Never sent over a broker.
    parsed: Any = None
    #: A copy the sweeper put back (``engine.jobs.sweeper``): the original may have been
    #: published after all and be slow, so the next stage checks the store before acting.
    recheck: bool = False


@dataclass(slots=True)
class BusOperations:
    """What a bus has done so far (``/metrics``, ``conduit bench``'s operations per message),
    counted with plain integer adds on the event loop: no lock, no system call."""

    publishes: int = 0
    """Envelopes published (RabbitMQ: ``basic.publish`` frames)."""
    deliveries: int = 0
    """Envelopes handed to a consumer (RabbitMQ: ``basic.deliver`` frames; a redelivery counts
    again)."""
    acks: int = 0
    """Acknowledgements (RabbitMQ: ``basic.ack`` and ``basic.reject`` frames sent; one ack with
    ``multiple`` settles many deliveries)."""
    confirms: int = 0
    """Publisher confirms received (RabbitMQ: ``basic.ack``/``nack`` frames from the broker; one
    with ``multiple`` confirms many publishes). The embedded bus has none."""


@dataclass(slots=True)
class Fanout:
    """One publish: the envelopes of one message that carry the same bytes, one per queue.
    The broker routes the one message to every queue (RabbitMQ: sender-selected distribution,
    the ``CC`` header), each queue's consumer gets its own delivery of it."""

    queues: list[str]
    envelopes: list[Envelope]


def fanouts(items: Sequence[tuple[str, Envelope]]) -> list[Fanout]:
    """Group routed envelopes into publishes, one per message and distinct payload.

    Only envelopes next to each other are grouped, so each queue gets its envelopes in the
    order given: a run of items of one message (same id, correlation id and ``recheck``) whose
    queues differ, split by payload (identical bytes share a publish; the pipeline hands every
    destination the same bytes, so a message usually costs one publish whatever its routes)."""
    groups: list[Fanout] = []
    run: dict[bytes, Fanout] = {}
    seen: set[str] = set()
    key: tuple[int, str | None, bool] | None = None
    for queue, envelope in items:
        this = (envelope.message_id, envelope.correlation_id, envelope.recheck)
        if this != key or queue in seen:
            run, seen, key = {}, set(), this
        seen.add(queue)
        group = run.get(envelope.body)
        if group is None:
            group = run[envelope.body] = Fanout([], [])
            groups.append(group)
        group.queues.append(queue)
        group.envelopes.append(envelope)
    return groups


Handler = Callable[[Envelope], Awaitable[None]]
#: Reads a queue's envelopes back from the store by message id, oldest first; returns those still
#: waiting (a delivery finished meanwhile, e.g. by a replay, is left out). See :meth:`Bus.spill`.
Reload = Callable[[list[int]], Awaitable[list[Envelope]]]


class DeadLetter(Exception):
    """Raised by a handler: this envelope is finished with, move it to the dead-letter queue."""


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A queue to declare: ``single_active`` keeps one consumer at a time across processes."""

    name: str
    single_active: bool = False
    dead_letter: str | None = None
    """The dead-letter queue its rejected envelopes go to (``conduit.<channel>.dlq``)."""


def source_queue(channel: str) -> str:
    return f"conduit.{channel}.source"


def dest_queue(channel: str, destination: str, partition: int | None = None) -> str:
    base = f"conduit.{channel}.dest.{destination}"
    return base if partition is None else f"{base}.p{partition}"


def dead_letter_queue(channel: str) -> str:
    return f"conduit.{channel}.dlq"


class Bus(Protocol):
    """Queues between stages.

    ``publish`` returns only once the envelopes are as durable as the bus makes them (broker
    confirm) and raises :class:`~conduit.core.errors.UnavailableError` at once when the bus is
    down. A subscription calls its handler per envelope, at most ``concurrency`` at a time, and
    acknowledges the envelope when the handler returns (see the module docstring for failures).
    """

    @property
    def holds_messages(self) -> bool:
        """True when the bus itself keeps queued envelopes across restarts (RabbitMQ); False
        when the engine must re-queue unfinished work from the store at start (embedded)."""
        ...

    @property
    def shared(self) -> bool:
        """True when other processes publish to and consume from the same queues (RabbitMQ)."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def declare(self, queues: Sequence[QueueSpec]) -> None:
        """Create the queues if missing (idempotent); a bus re-declares them on reconnect."""
        ...

    async def publish(self, queue: str, envelopes: list[Envelope]) -> None: ...

    async def publish_routed(self, items: Sequence[tuple[str, Envelope]]) -> None:
        """Publish each envelope to its own queue, waiting once for all of them. The envelopes
        of one message with the same bytes, next to each other, are *one* publish that the bus
        routes to each of their queues (:func:`fanouts`): a message going to N destinations
        costs one publish and one confirm, and N deliveries. Raises when a publish is not
        confirmed, or reached no queue at all (RabbitMQ returns it: never taken as queued)."""
        ...

    async def subscribe(self, queue: str, handler: Handler, *, concurrency: int = 1) -> None: ...

    def depth(self, queue: str) -> int | None:
        """Envelopes waiting in ``queue``, when the bus can tell cheaply."""
        ...

    def spill(self, queue: str, reload: Reload) -> None:
        """Let ``queue`` keep only message ids beyond its memory, reading the envelopes back
        with ``reload(ids)`` as it drains (the embedded bus; a broker holds its own backlog and
        ignores this)."""
        ...

    @property
    def connected(self) -> bool:
        """Whether publishing can succeed right now."""
        ...

    @property
    def operations(self) -> BusOperations:
        """What it has done so far (counted, see :class:`BusOperations`)."""
        ...


async def cancel_tasks(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel consumer tasks and wait until they are all done.

    A cancellation can be swallowed on Python 3.11 (``asyncio.wait_for`` returns the result when
    its inner future completes at the moment the task is cancelled, gh-86296); the consumer then
    goes back to waiting for its queue and would never finish. So cancel again until it does.
    """
    for task in tasks:
        task.cancel()
    pending = {task for task in tasks if not task.done()}
    while pending:
        _done, pending = await asyncio.wait(pending, timeout=0.5)
        for task in pending:
            task.cancel()
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            log.warning("consumer ended with an error", task=task.get_name(),
                        error=type(task.exception()).__name__)
