"""One deployed channel: its source, its pipeline worker and its destination workers.

The order that makes an ACK mean durable (Mirth's DestinationChain, DESIGN.md): store the message,
then publish it to the bus, then answer the sender. The pipeline worker and the destination
workers run from bus subscriptions, so a crash at any point leaves the work in the store (embedded
bus) or in the broker (RabbitMQ) to be picked up again: at-least-once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from conduit.bus import Bus, Envelope, source_queue
from conduit.connectors.base import ConnectorContext
from conduit.core.errors import HL7ParseError, MessageError
from conduit.core.observer import Observer
from conduit.core.payload import Payload, parse_payload
from conduit.core.protocols import Destination, Receipt, Source
from conduit.core.reason import HIDDEN, Reason, value
from conduit.engine.backpressure import Backpressure
from conduit.engine.channel import Channel
from conduit.engine.delivery import DeliveryWorker
from conduit.engine.events import EventLog
from conduit.engine.pipeline import Pipeline, PipelineResult, strict_reason
from conduit.engine.search import search_fields
from conduit.engine.topology import (
    consumed_queues,
    keeps_order,
    queue_specs,
    republish,
    route_queue,
)
from conduit.hl7.message import Message
from conduit.store import Store, replay
from conduit.store.store import Route

log = structlog.get_logger(__name__)

AFTER_DELIVERY_TIMEOUT = 60.0
DEFAULT_WORKERS = 8
#: Messages a handler may hold while it waits for the store (a group commit takes a few ms):
#: this many per worker, so waiting on bookkeeping never starves the CPU of work. Sends are
#: still limited to ``workers`` (or a destination's ``concurrency``) at once.
IN_FLIGHT_PER_WORKER = 8
REQUEUE_POLL = 1.0
#: Messages read back from the store at a time when recovering unfinished work.
RECOVER_PART = 1000
FINAL = ("SENT", "ERROR", "FILTERED", "TRANSFORMED")


class ChannelRuntime:
    """Runs one channel; implements the ``Inbound`` protocol its source calls."""

    def __init__(self, channel: Channel, store: Store, bus: Bus, context: ConnectorContext,
                 *, workers: int | None = None, observer: Observer | None = None,
                 workers_running: Callable[[], bool] | None = None,
                 default_zone: str | None = None, events: EventLog | None = None) -> None:
        """``observer`` is told what happens to each message (metrics, alerts);
        ``workers_running`` says whether the channel's workers may take messages now (False
        while the channel is stopped: the listener then only queues); ``default_zone`` is
        the engine's time zone for times sent without an offset; ``events``: the event log its
        destinations record breakers and blocks in."""
        self.channel = channel
        self.name = channel.name
        self.store = store
        self.bus = bus
        self.context = context
        self.observer = observer or Observer()
        self.events = events
        self._workers_running = workers_running or (lambda: True)
        self.pipeline = Pipeline(channel, default_zone=default_zone)
        self.source: Source | None = None
        self.destinations: dict[str, Destination] = {}
        self._waiters: dict[int, asyncio.Future[tuple[str, bytes | None]]] = {}
        self._strict = channel.validation == "strict"
        self._after_delivery = channel.source.ack == "after-delivery"
        self._data_type = channel.data_type or "hl7v2"
        self._search_paths = list(channel.search.fields)
        if channel.search.full_text:  # the indexing job reads the set at each pass
            store.full_text_channels.add(self.name)
        else:  # a redeploy may turn it off
            store.full_text_channels.discard(self.name)
        #: Sends at once per destination unless it says (pipeline and destination handlers: x8).
        self.workers = workers or DEFAULT_WORKERS
        self.workers_by_destination: dict[str, DeliveryWorker] = {}
        self._configs = {d.name: d for d in channel.destinations}
        #: The queues each destination's worker here consumes.
        self._consumed = {d.name: list(consumed_queues(self.name, d))
                          for d in channel.destinations}
        #: Holds intake while a destination that is sending falls behind.
        self.backpressure = Backpressure(channel.backpressure, self._backlog)
        self._ordered = keeps_order(channel)
        self._poll: asyncio.Task[None] | None = None
        self._declared = False
        #: Pipeline workers run in this process too: the listener runs the pipeline itself and
        #: stores the message with its outcome in one write (see ``_accept``).
        self._inline = False

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, *, listeners: bool = True, workers: bool = True) -> None:
        if not self._declared:  # idempotent on the broker; a listener publishes to these too
            await self.bus.declare(queue_specs(self.channel))
            self._declared = True
            self._spill_to_store()
        if workers:
            await self._start_workers()
        if listeners:
            self.source = self.channel.registry.build_source(self.channel.source, self.context)
            await self.source.start(self)
            log.info("channel listening", channel=self.name, source=self.source.describe())

    def _spill_to_store(self) -> None:
        """Embedded bus: what does not fit in a queue's memory waits in the store, read back
        by message id (see ``bus.embedded``)."""
        self.bus.spill(source_queue(self.name), functools.partial(self._read_back, None))
        for config in self.channel.destinations:
            for queue in consumed_queues(self.name, config):
                self.bus.spill(queue, functools.partial(self._read_back, config.name))

    async def _read_back(self, destination: str | None, ids: list[int]) -> list[Envelope]:
        rows = await asyncio.to_thread(self.store.queued, self.name, destination, ids)
        return [Envelope(message_id, content, correlation_id)
                for message_id, content, correlation_id in rows]

    async def _start_workers(self) -> None:
        for config in self.channel.destinations:
            connector = self.channel.registry.build_destination(config, self.context)
            self.destinations[config.name] = connector
            senders = (1 if config.ordered or config.partition_by
                       else config.concurrency or self.workers)
            spec = self.channel.registry.destinations[config.type]
            journal = self.context.data_dir / "outcomes" / self.name / f"{config.name}.jsonl"
            worker = DeliveryWorker(self.name, config, connector, self.store, self._settled,
                                    self.observer, senders=senders,
                                    sends_correlation_id=spec.sends_correlation_id,
                                    journal=journal, events=self.events)
            self.workers_by_destination[config.name] = worker
            in_flight = 1 if senders == 1 and worker.holds else senders * IN_FLIGHT_PER_WORKER
            for queue in consumed_queues(self.name, config):
                await self.bus.subscribe(queue, worker.handle, concurrency=in_flight)
        if not self.bus.shared:
            # Embedded bus: reprocess requests reach this process through the store.
            seen = await asyncio.to_thread(replay.last_event_id, self.store)
            self._poll = asyncio.get_running_loop().create_task(
                self._watch_requeues(seen), name=f"{self.name}-requeues")
        if not self.bus.holds_messages:
            await self._recover()
        await self.bus.subscribe(source_queue(self.name), self._process, concurrency=(
            1 if self._ordered else self.workers * IN_FLIGHT_PER_WORKER))
        self._inline = True

    async def _recover(self) -> None:
        """Embedded bus: re-queue from the store what a crash left unfinished, a part at a time
        (beyond its buffer a queue keeps only ids: a long backlog does not fill the memory)."""
        received, queued = await asyncio.to_thread(self.store.pending, self.name)
        for start in range(0, len(received), RECOVER_PART):
            part = received[start:start + RECOVER_PART]
            await self._republish(await self._read_back(None, part), [])
        for destination, ids in queued.items():
            if destination not in self.destinations:
                continue
            for start in range(0, len(ids), RECOVER_PART):
                envelopes = await self._read_back(destination, ids[start:start + RECOVER_PART])
                await self._republish([], [(destination, e) for e in envelopes])
        if received or queued:
            log.info("recovered unfinished work", channel=self.name, messages=len(received),
                     deliveries=sum(len(ids) for ids in queued.values()))

    async def _republish(self, received: list[Envelope],
                         queued: list[tuple[str, Envelope]]) -> None:
        """Stored messages to the source queue, stored deliveries (destination, envelope) to
        the queues of the destinations this runtime has."""
        await republish(self.bus, self.name, self._configs, received,
                        [(d, e) for d, e in queued if d in self.destinations])

    async def _watch_requeues(self, seen: int) -> None:
        """Embedded bus: publish what ``conduit reprocess`` put back to work in the store."""
        while True:
            await asyncio.sleep(REQUEUE_POLL)
            try:
                seen, ids = await asyncio.to_thread(
                    replay.reprocess_events_since, self.store, self.name, seen)
                if ids:
                    received, queued = await asyncio.to_thread(replay.pending_for, self.store, ids)
                    await self._republish([Envelope(i, raw) for i, raw in received],
                                          [(d, Envelope(i, content)) for i, d, content in queued])
                    log.info("reprocessing", channel=self.name, messages=len(ids))
            except Exception as exc:  # the store may be briefly unavailable: try again
                log.warning("reprocess poll failed", channel=self.name,
                            error=f"{type(exc).__name__}: {exc}")

    # -- state, for the dashboard ----------------------------------------------------------

    def breaker_state(self, destination: str) -> str | None:
        """``closed``, ``open`` or ``half-open``; None without a breaker (or workers here)."""
        worker = self.workers_by_destination.get(destination)
        return worker.breaker_state() if worker is not None else None

    def breaker_states(self) -> dict[str, str]:
        """Breaker state (``closed``, ``open``, ``half-open``) of each destination with one
        (a destination paused because its outcomes cannot be recorded counts as open)."""
        states = {name: worker.breaker_state()
                  for name, worker in self.workers_by_destination.items()}
        return {name: state.replace("_", "-") for name, state in states.items() if state}

    def close_breaker(self, destination: str, *, user: str | None = None) -> bool:
        """Close a destination's breaker (``user`` asked); False when it has none (KeyError:
        no such destination here)."""
        breaker = self.workers_by_destination[destination].breaker
        if breaker is None:
            return False
        breaker.close(user=user)
        return True

    def blocked_destinations(self) -> dict[str, tuple[int | None, Reason]]:
        """Ordered destinations holding their queue: the message each is blocked on, and why
        (a :class:`Reason`: show viewers its public form)."""
        return {name: (worker.blocked_message, worker.blocked)
                for name, worker in self.workers_by_destination.items()
                if worker.blocked is not None}

    def destination_state(self) -> dict[str, dict[str, object]]:
        """Per destination: breaker state, blocked (ordered, holding) and why, counts."""
        return {name: worker.state() for name, worker in self.workers_by_destination.items()}

    async def stop_polling(self) -> None:
        """Stop watching for reprocess requests (a runtime replacing this one watches now)."""
        if self._poll is not None:
            self._poll.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll
            self._poll = None

    def _backlog(self) -> int:
        """Messages waiting in the queue of the destination furthest behind among those this
        process sends to and that are sending (a dead one holds nothing back, nor one whose
        rate limit keeps its queue on purpose, nor any while the channel is stopped)."""
        if not self._workers_running():
            return 0
        deepest = 0
        for name, worker in self.workers_by_destination.items():
            if worker.flowing() and worker.limiter is None:
                deepest = max(deepest, sum(self.bus.depth(q) or 0 for q in self._consumed[name]))
        return deepest

    async def stop(self) -> None:
        self.backpressure.close()
        await self.stop_polling()
        if self.source is not None:
            await self.source.stop()
        for connector in self.destinations.values():
            await connector.close()

    def describe(self) -> str:
        return self.source.describe() if self.source else "(workers only)"

    # -- Inbound: what the source calls ----------------------------------------------------

    async def receive(self, raw: bytes, meta: dict[str, Any] | None = None) -> Receipt:
        await self.backpressure.admit()
        receipt = await self._intake(raw, meta or {})
        self.observer.answered(self.name, "AA" if receipt.accepted
                               else "AR" if receipt.permanent else "AE")
        return receipt

    async def reject(self, raw: bytes, reason: str,
                     meta: dict[str, Any] | None = None) -> int | None:
        """Keep what a source could not accept itself (status ERROR, answered AR), so an
        operator can see and replay it."""
        message_id = await self._keep_refused(raw, reason, meta or {})
        self.observer.answered(self.name, "AR")
        return message_id

    async def _intake(self, raw: bytes, meta: dict[str, Any]) -> Receipt:
        """The one intake path: read the message once (parse; with ``validate: strict``
        validate, off the event loop), then run the pipeline and store the outcome with the
        message in one write when this process runs the channel's workers, else store the raw
        message and queue it for the process that does."""
        read = await self._read(raw, meta.get("message"))
        if read.refused is not None:
            refused = Reason(read.refused, f"not a readable {self._data_type} message")
            message_id = await self._keep_refused(raw, refused, meta)
            # a Reason: the sender reads it whole, a log line of the source its public form
            return Receipt(False, message_id, error=refused, permanent=True)
        fields = self._fields(read, meta)
        if read.problems:
            reason = Reason("; ".join(read.problems),
                            f"strict validation failed: {HIDDEN}")
            message_id = await self.store.received(self.name, raw, status="ERROR",
                                                   error=reason, **fields)
            self.observer.received(self.name, message_id, "ERROR")
            return Receipt(False, message_id, error=reason, permanent=True)
        if self._inline and self._workers_running():
            return await self._accept(raw, fields, read.message, meta.get("on_commit"))
        try:
            message_id = await self.store.received(self.name, raw, **fields)
        except Exception as exc:
            log.error("store unavailable", channel=self.name, error=type(exc).__name__)
            return Receipt(False, error="message store unavailable; please resend", resend=True)
        self.observer.received(self.name, message_id, "RECEIVED")
        return await self._queue(message_id, [(source_queue(self.name), Envelope(
            message_id, raw, fields["correlation_id"], read.message))], meta.get("on_commit"))

    async def _read(self, raw: bytes, message: Message | None, *,
                    validate: bool = True) -> _Read:
        """Parse ``raw`` as the channel's data type (unless the source already did) and, with
        ``validate: strict``, validate it in a thread: hl7apy takes milliseconds."""
        if self._data_type != "hl7v2":
            try:
                return _Read(payload=parse_payload(self._data_type, raw))
            except MessageError as exc:
                return _Read(refused=str(exc))
        if message is None:
            try:
                message = Message.parse(raw)
            except HL7ParseError as exc:
                return _Read(refused=str(exc))
        if not (self._strict and validate):
            return _Read(message=message)
        from conduit.hl7.strict import validate_strict

        try:
            problems = await asyncio.to_thread(validate_strict, message)
        except Exception as exc:
            problems = [f"validator failed: {type(exc).__name__}"]
        return _Read(message=message, problems=problems)

    def _fields(self, read: _Read, meta: dict[str, Any]) -> dict[str, Any]:
        """The search fields stored with the message; every message gets a correlation id:
        the sender's X-Request-Id, else MSH-10 (or the body's id), else a new one."""
        if read.message is not None:
            message = read.message
            fields: dict[str, Any] = {
                "control_id": message.control_id, "message_type": message.message_type,
                "patient_id": message.get("PID-3.1") or None, "source": meta.get("remote"),
                "search": search_fields(message, self._search_paths)}
        else:
            payload = read.payload
            assert payload is not None
            fields = {"control_id": meta.get("control_id") or payload.control_id,
                      "message_type": meta.get("message_type") or payload.message_type,
                      "patient_id": payload.patient_id, "source": meta.get("remote")}
        fields["correlation_id"] = (
            meta.get("correlation_id") or fields["control_id"] or uuid.uuid4().hex)[:100]
        return fields

    async def _accept(self, raw: bytes, fields: dict[str, Any], message: Message | None,
                      on_commit: Callable[[], None] | None = None) -> Receipt:
        """Pipeline, then store the message with its outcome and deliveries, then queue them.

        Mirth's order (the source runs filter and transformer before it answers), and the
        cheapest: one store write and no trip through the source queue. Used when this process
        runs the channel's workers; a listener-only process queues the raw message instead."""
        result, routes = self._run_pipeline(raw, message)
        try:
            message_id = await self.store.accepted(
                self.name, raw, status=result.status, transformed=result.transformed,
                error=result.reason, routes=routes, **fields)
        except Exception as exc:
            log.error("store unavailable", channel=self.name, error=type(exc).__name__)
            return Receipt(False, error="message store unavailable; please resend", resend=True)
        queued, status = _outcome(result, routes)
        self.observer.received(self.name, message_id, "RECEIVED")
        self.observer.processed(self.name, message_id, status)
        if not queued:
            self._settled(message_id, status, None)
            if not self._after_delivery:
                return Receipt(True, message_id)
            if status == "ERROR":
                return Receipt(False, message_id, error="processing failed")
            return Receipt(True, message_id, filtered=status == "FILTERED")
        return await self._queue(message_id, self._route_items(
            message_id, fields["correlation_id"], queued, result.message, result.transformed),
            on_commit, result.transformed)

    async def _queue(self, message_id: int, items: list[tuple[str, Envelope]],
                     on_commit: Callable[[], None] | None = None,
                     transformed: bytes | None = None) -> Receipt:
        """Publish a stored message's envelopes, then the sender's receipt: at once, or with
        ``ack: after-delivery`` once every destination has it. A bus that is down gets the
        sender an error to resend on, and the stored message ERROR so the counts add up.

        ``on_commit`` (a source's ``meta["on_commit"]``) is called once the message is stored
        and queued, before an after-delivery wait: an HL7 commit ACK (CA) goes back then."""
        waiter: asyncio.Future[tuple[str, bytes | None]] | None = None
        if self._after_delivery:
            waiter = self._waiters[message_id] = asyncio.get_running_loop().create_future()
        try:
            await self.bus.publish_routed(items)
        except Exception as exc:
            self._waiters.pop(message_id, None)
            log.error("bus unavailable", channel=self.name, message_id=message_id,
                      error=type(exc).__name__)
            with contextlib.suppress(Exception):  # so the counts add up; the sender resends
                await self.store.processed(  # marked: a reprocess by search leaves it out
                    message_id, "ERROR", transformed=transformed, routes=[],
                    error=Reason(f"{replay.NOT_ACCEPTED}message bus unavailable, not queued"))
            return Receipt(False, message_id, error="message bus unavailable; please resend",
                           resend=True)
        if waiter is None:
            return Receipt(True, message_id)
        if on_commit is not None:
            try:
                on_commit()
            except Exception as exc:  # the sender's connection, say: delivery goes on
                log.warning("commit callback failed", channel=self.name, message_id=message_id,
                            error=type(exc).__name__)
        return await self._await_delivery(message_id, waiter)

    def _run_pipeline(self, raw: bytes,
                      message: Message | None) -> tuple[PipelineResult, list[Route]]:
        """The pipeline on a message already read (parsed, validated), timed for the observer."""
        began = time.perf_counter()
        result = self.pipeline.process(raw, message=message, validated=True)
        self.observer.timed(self.name, "processing", time.perf_counter() - began)
        routes = result.routes if result.status == "TRANSFORMED" else []
        return result, routes

    async def _await_delivery(self, message_id: int,
                              waiter: asyncio.Future[tuple[str, bytes | None]]) -> Receipt:
        """``ack: after-delivery``: the receipt once every destination has the message."""
        try:
            status, response = await asyncio.wait_for(waiter, AFTER_DELIVERY_TIMEOUT)
        except TimeoutError:
            return Receipt(False, message_id, error="not delivered in time; it stays queued")
        finally:
            self._waiters.pop(message_id, None)
        if status == "ERROR":
            return Receipt(False, message_id, error="delivery failed", response=response)
        return Receipt(True, message_id, filtered=status == "FILTERED", response=response)

    def _route_items(self, message_id: int, correlation_id: str | None, queued: list[Route],
                     message: Message | None,
                     transformed: bytes | None) -> list[tuple[str, Envelope]]:
        """Each queued route's destination queue and envelope; destinations that read fields
        (file paths, ACK checks) get the parsed message along when they send exactly its text."""
        items = []
        for route in queued:
            content = route.content or b""
            parsed = message if transformed is not None and content == transformed else None
            items.append((route_queue(self.name, self._configs[route.destination], content,
                                      message),
                          Envelope(message_id, content, correlation_id, parsed)))
        return items

    async def _keep_refused(self, raw: bytes, reason: str, meta: dict[str, Any]) -> int | None:
        """Store what could not be accepted with status ERROR (None when the store is down)."""
        try:
            message_id = await self.store.received(
                self.name, raw, control_id=None, message_type=None, status="ERROR",
                error=reason, source=meta.get("remote"), correlation_id=meta.get("correlation_id"))
        except Exception as exc:
            log.error("store unavailable", channel=self.name, error=type(exc).__name__)
            return None
        self.observer.received(self.name, message_id, "ERROR")
        return message_id

    # -- workers ---------------------------------------------------------------------------

    async def _process(self, envelope: Envelope) -> None:
        """A raw message queued by a listener-only process: read it, run the pipeline, store
        the outcome, queue its deliveries."""
        if envelope.recheck and await asyncio.to_thread(
                replay.message_status, self.store, envelope.message_id) != "RECEIVED":
            return  # a swept copy of a message processed after all
        # Queued only once intake read it (and strict validation passed): parsed again only
        # when it crossed a process boundary (RabbitMQ), never validated again.
        read = await self._read(envelope.body, envelope.parsed, validate=False)
        if read.refused is not None or read.problems:
            reason = Reason.of("not an HL7 v2 message: " if self._data_type == "hl7v2"
                               else f"not a {self._data_type} message: ", value(read.refused)
                               ) if read.refused is not None else strict_reason(read.problems)
            result, routes = PipelineResult("ERROR", reason, read.message, None), list[Route]()
        else:
            result, routes = self._run_pipeline(envelope.body, read.message)
        await self.store.processed(envelope.message_id, result.status,
                                   transformed=result.transformed, error=result.reason,
                                   routes=routes, raw=envelope.body)
        queued, status = _outcome(result, routes)
        self.observer.processed(self.name, envelope.message_id, status)
        if not queued:
            self._settled(envelope.message_id, result.status, None)
            return
        await self.bus.publish_routed(self._route_items(
            envelope.message_id, envelope.correlation_id, queued, result.message,
            result.transformed))

    def _settled(self, message_id: int, status: str, response: bytes | None) -> None:
        waiter = self._waiters.get(message_id)
        if waiter is not None and not waiter.done() and status in FINAL:
            waiter.set_result((status, response))


@dataclass(slots=True)
class _Read:
    """A message as intake read it: parsed (HL7) or a payload (other data types), with what
    strict validation found; or why it could not be read at all."""

    message: Message | None = None
    payload: Payload | None = None
    problems: list[str] = field(default_factory=list)
    refused: str | None = None


def _outcome(result: PipelineResult, routes: list[Route]) -> tuple[list[Route], str]:
    """The routes to queue, and the message's status after the pipeline: QUEUED when some
    destination sends it, else FILTERED (every destination filtered it), ERROR or TRANSFORMED."""
    queued = [r for r in routes if r.filtered is None and r.content is not None]
    return queued, "QUEUED" if queued else ("FILTERED" if routes else result.status)

