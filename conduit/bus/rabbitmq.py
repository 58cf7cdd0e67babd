"""The RabbitMQ bus: durable queues, persistent messages, publisher confirms grouped in a window.

Why pika rather than kombu: kombu's ``confirm_publish`` waits for each confirm before the next
publish (2,000-4,600 messages/s measured here); with pika up to ``confirm_window`` publishes are
outstanding at once, and the broker confirms many with one ``multiple=True`` frame
(14,000-36,000/s). Every coroutine that calls :meth:`RabbitBus.publish` still awaits the confirm of
*its own* envelopes (their delivery tags), so a source answers AA only once its message is durable
in the broker. Consumers acknowledge the same way, many deliveries a frame (:class:`_Acks`; the
broker's CPU per message fell by about 14% in the bench).

Why pika's asyncio adapter on the engine's own loop rather than a pika thread: a first version ran
``SelectConnection`` in an I/O thread; on these 2-core machines the two threads handed the GIL
back and forth on every socket call (up to the 5 ms switch interval each time) and end-to-end
throughput was about 40% of the embedded bus's. On the loop there is no hand-off and no bridge:
callbacks resolve futures directly. Topology is declared with a short-lived blocking connection in
a worker thread (only at start and after a reconnect).

One message, one publish: the envelopes of a message bound for several destination queues with
the same bytes go as one ``basic.publish`` to the default exchange, routed to the first queue and,
through the ``CC`` header (RabbitMQ's sender-selected distribution), to the others; the broker
confirms it once all of them hold it. Against one publish per queue, the standard two-destination
channel's publishes and confirms per message halve (``conduit bench``'s ``ops/msg``).

Topology, declared idempotently at start and again after every reconnect (see :class:`QueueSpec`):
durable queues (``x-queue-type`` classic or quorum), ``x-single-active-consumer`` where order
matters, and per channel a fanout dead-letter exchange and queue, both named
``conduit.<channel>.dlq``, that the destination queues dead-letter into.

Quorum queues by default: replicated and fsynced, for about a sixth more broker CPU than classic
at the same rate and latency (README, Performance). A queue's type is fixed once declared, so an
upgrade must not stop on the classic queues an older version made: unless the URL names a
``queue_type``, a queue that exists as classic (with otherwise the same settings) is kept and
used as it is, with one warning per queue and the ``classic_queues`` the operator sees in
``/metrics`` and ``/health`` (``conduit bus migrate-queues`` moves them to quorum). A type named
in the URL is a requirement: a queue of the other type stops the start, as any other setting
that differs does.

Broker outages: a supervisor task reconnects with backoff (0.2 s doubling to 5 s). While the
connection is down :meth:`publish` raises :class:`UnavailableError` at once (sources answer AE),
publishes waiting for a confirm fail the same way, and consumers resume by themselves when the
broker is back; envelopes a handler was busy with are redelivered by the broker (at-least-once).

URL options (removed before the URL reaches pika): ``queue_type=classic|quorum`` (default
quorum, see above),
``prefetch=N`` (unacknowledged deliveries per consumer), ``confirm_window=N``. Example:
``amqp://guest:guest@127.0.0.1:5672/%2F?queue_type=classic``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pika
import pika.exceptions
import structlog
from pika.adapters.asyncio_connection import AsyncioConnection
from pika.channel import Channel as PikaChannel
from pika.spec import Basic, BasicProperties

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
from conduit.core.errors import ConfigError, UnavailableError

log = structlog.get_logger(__name__)

OUR_OPTIONS = ("queue_type", "prefetch", "confirm_window")
#: Seconds a queue depth read from the broker is shown before it is asked again.
DEPTH_MAX_AGE = 2.0
PERSISTENT = 2
QUEUE_TYPES = ("classic", "quorum")
#: Without ``queue_type`` in the URL.
DEFAULT_QUEUE_TYPE = "quorum"
#: The message's correlation id travels in this header (the AMQP correlation_id property
#: pairs a publish with its returned message).
CORRELATION_HEADER = "x-conduit-correlation-id"
#: Set on a copy the sweeper put back (``Envelope.recheck``).
RECHECK_HEADER = "x-conduit-recheck"
#: The queues beyond the routing key a publish goes to (RabbitMQ's sender-selected
#: distribution: the default exchange routes the message to each named queue too).
CC_HEADER = "CC"


def _headers(envelope: Envelope, queues: list[str]) -> dict[str, object] | None:
    headers: dict[str, object] = {}
    if envelope.correlation_id:
        headers[CORRELATION_HEADER] = envelope.correlation_id
    if envelope.recheck:
        headers[RECHECK_HEADER] = 1
    if len(queues) > 1:
        headers[CC_HEADER] = queues[1:]
    return headers or None


@dataclass(slots=True)
class _Pending:
    """One ``publish`` call: resolved once every one of its publishes is confirmed."""

    future: asyncio.Future[None]
    remaining: int
    failed: BaseException | None = None
    settled: bool = False


class _Acks:
    """A consumer channel's deliveries not yet settled, in the order they came (a channel's
    delivery tags rise one by one).

    Settled deliveries are acknowledged together once per turn of the loop (a group commit of
    the store settles many at once): the settled run at the front with one ``multiple=True``
    ack, any settled delivery behind a slower one on its own, so that a slow delivery never
    holds back the others' acks (unacknowledged deliveries count against the prefetch).
    Rejections (dead letters) go at once; a multiple ack skips them, as the broker no longer
    counts them as outstanding.
    """

    __slots__ = ("_acked", "_gone", "_scheduled", "_unsettled", "channel", "operations")

    def __init__(self, channel: PikaChannel, operations: BusOperations | None = None) -> None:
        self.channel = channel
        self.operations = operations or BusOperations()  # the bus's counts
        self._unsettled: deque[int] = deque()
        self._acked: set[int] = set()  # settled, ack not sent yet
        self._gone: set[int] = set()  # still in _unsettled, but rejected or acked on its own
        self._scheduled = False

    def received(self, tag: int) -> None:
        self._unsettled.append(tag)

    def settle(self, tag: int, ack: bool, loop: asyncio.AbstractEventLoop) -> None:
        if not ack:
            self.channel.basic_reject(tag, requeue=False)  # to the dead-letter exchange
            self.operations.acks += 1
            self._gone.add(tag)
        else:
            self._acked.add(tag)
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Send the acks settled since the last flush (nothing if the channel is gone: the
        broker redelivers what it did not hear about)."""
        self._scheduled = False
        if not self.channel.is_open:
            return
        unsettled, acked, gone = self._unsettled, self._acked, self._gone
        last = None
        while unsettled:
            tag = unsettled[0]
            if tag in acked:
                acked.discard(tag)
                last = tag
            elif tag in gone:
                gone.discard(tag)
            else:
                break
            unsettled.popleft()
        if last is not None:
            self.channel.basic_ack(last, multiple=True)
            self.operations.acks += 1
        for tag in acked:
            self.channel.basic_ack(tag)
            self.operations.acks += 1
            gone.add(tag)
        acked.clear()


@dataclass(slots=True)
class _Subscription:
    queue: str
    handler: Handler
    concurrency: int
    prefetch: int
    inbox: asyncio.Queue[tuple[int, _Acks, int, Envelope]] = field(
        default_factory=asyncio.Queue)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    generation: int = 0
    """The connection generation its consumer channel was opened on."""
    acks: _Acks | None = None
    """Its consumer channel's acknowledgements."""


class RabbitBus:
    """The production bus (see the module docstring)."""

    holds_messages = True
    #: Every engine process (and ``conduit reprocess``) on the same broker shares the queues.
    shared = True

    def __init__(self, url: str, *, queue_type: str | None = None, prefetch: int | None = None,
                 confirm_window: int = 1000, publish_timeout: float = 15.0,
                 start_timeout: float = 30.0, redelivery_delay: float = 1.0,
                 reconnect_max: float = 5.0) -> None:
        parts = urlsplit(url)
        if parts.path == "//":
            # kombu's spelling of the default vhost "/" (``amqp://host:5672//``); pika reads it
            # as an empty vhost name, which RabbitMQ refuses.
            parts = parts._replace(path="/%2F")
        query = dict(parse_qsl(parts.query))
        options = {k: query.pop(k) for k in OUR_OPTIONS if k in query}
        self.url = urlunsplit(parts._replace(query=urlencode(query)))
        #: Whether the URL (or the caller) named the type: then a queue of the other type is an
        #: error, else an existing classic queue is kept (see the module docstring).
        self.queue_type_explicit = bool(queue_type or "queue_type" in options)
        self.queue_type = queue_type or options.get("queue_type", DEFAULT_QUEUE_TYPE)
        if self.queue_type not in QUEUE_TYPES:
            raise ConfigError([f"bus URL: queue_type must be classic or quorum, "
                               f"not {self.queue_type!r}"])
        self.prefetch = prefetch or (int(options["prefetch"]) if "prefetch" in options else None)
        self.confirm_window = int(options.get("confirm_window", confirm_window))
        self.publish_timeout = publish_timeout
        self.start_timeout = start_timeout
        self.redelivery_delay = redelivery_delay
        self.reconnect_max = reconnect_max
        self._params = pika.URLParameters(self.url)
        if "heartbeat" not in query:
            self._params.heartbeat = 15
        self._params.connection_attempts = 1
        self._params.socket_timeout = 5
        self._params.blocked_connection_timeout = 30

        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: asyncio.Task[None] | None = None
        self._closing = False
        self._up = asyncio.Event()
        #: Set when the broker refused the login or the vhost: no use retrying at start.
        self._refused = asyncio.Event()
        self._refusal = ""
        self._wake = asyncio.Event()
        self._lost = asyncio.Event()
        self._specs: dict[str, QueueSpec] = {}
        #: Queues that exist as classic although quorum is wanted (kept; see the docstring).
        self.classic_queues: set[str] = set()
        self._subscriptions: list[_Subscription] = []
        # connection state (touched only on the loop)
        self._conn: AsyncioConnection | None = None
        self._pub: PikaChannel | None = None
        self._generation = 0
        self._ready = False
        self._seq = 0
        self._lowest = 1
        self._outstanding: dict[int, _Pending] = {}
        self.operations = BusOperations()
        self._resolved: list[_Pending] = []
        #: (queues, envelope, its publish call): one basic.publish routed to every queue
        self._outbox: deque[tuple[list[str], Envelope, _Pending]] = deque()
        # queue depths for the dashboard (see depth)
        self._depths: dict[str, int] = {}
        self._depths_at = float("-inf")
        self._depth_task: asyncio.Task[None] | None = None

    # -- lifecycle (loop side) -------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._ready

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._closing = False
        self._runner = self._loop.create_task(self._run(), name="rabbitmq-connection")
        self._refused.clear()
        waits = [asyncio.ensure_future(self._up.wait()),
                 asyncio.ensure_future(self._refused.wait())]
        try:
            await asyncio.wait(waits, timeout=self.start_timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        if self._up.is_set():
            return
        await self.close()
        if self._refused.is_set():  # a wrong password does not get better by waiting
            raise UnavailableError(self._refusal)
        raise UnavailableError(f"RabbitMQ at {safe_url(self.url)} not reachable in "
                               f"{self.start_timeout:.0f}s")

    def _check_refused(self, error: BaseException) -> None:
        """Note a login or vhost the broker refused (authentication failure, access denied)."""
        if isinstance(error, pika.exceptions.ProbableAuthenticationError
                      | pika.exceptions.AuthenticationError):
            what = "refused the login: authentication failed; check the user and password"
        elif isinstance(error, pika.exceptions.ProbableAccessDeniedError):
            what = "refused access: check the user's permissions and the vhost"
        else:
            return
        self._refusal = f"RabbitMQ at {safe_url(self.url)} {what} in the bus URL"
        self._refused.set()

    async def close(self) -> None:
        if self._depth_task is not None:
            self._depth_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._depth_task
        await cancel_tasks([t for s in self._subscriptions for t in s.tasks])
        for subscription in self._subscriptions:
            if subscription.acks is not None:
                subscription.acks.flush()  # what the handlers finished is not redelivered
        self._subscriptions.clear()
        self._closing = True
        self._wake.set()
        self._close_connection()
        if self._runner is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._runner, 10)
            self._runner = None

    async def declare(self, queues: Sequence[QueueSpec]) -> None:
        for spec in queues:
            self._specs[spec.name] = spec
        await asyncio.to_thread(self._declare_blocking, list(queues))

    def spill(self, queue: str, reload: Reload) -> None:
        """The broker holds the backlog itself: nothing to spill."""

    def depth(self, queue: str) -> int | None:
        """Messages ready in ``queue`` as the broker last said (None until it has): asked at
        most every ``DEPTH_MAX_AGE`` seconds, and only while someone reads them (the
        dashboard), on a connection of its own so that a missing queue cannot close the
        publishing channel. Deliveries held by consumers are not counted."""
        if self._loop is not None and not self._closing:
            self._loop.call_soon_threadsafe(self._want_depths)
        return self._depths.get(queue)

    def _want_depths(self) -> None:
        if (self._depth_task is None and not self._closing
                and time.monotonic() - self._depths_at >= DEPTH_MAX_AGE):
            assert self._loop is not None
            self._depth_task = self._loop.create_task(self._refresh_depths(),
                                                      name="rabbitmq-depths")

    async def _refresh_depths(self) -> None:
        names = sorted({*self._specs, *(s.dead_letter for s in self._specs.values()
                                        if s.dead_letter)})
        try:
            self._depths = await asyncio.to_thread(self._depths_blocking, names)
        except Exception as exc:  # the broker away or refusing: no figures until it answers
            log.debug("rabbitmq queue depths unavailable", error=type(exc).__name__)
            self._depths = {}
        finally:
            self._depths_at = time.monotonic()
            self._depth_task = None

    def _depths_blocking(self, names: list[str]) -> dict[str, int]:
        depths: dict[str, int] = {}
        connection = pika.BlockingConnection(self._params)
        try:
            channel = connection.channel()
            for name in names:
                try:
                    depths[name] = channel.queue_declare(name, passive=True).method.message_count
                except pika.exceptions.ChannelClosedByBroker:  # not there (any more)
                    channel = connection.channel()
        finally:
            with contextlib.suppress(Exception):
                connection.close()
        return depths

    # -- publishing (loop side) ------------------------------------------------------------

    async def publish(self, queue: str, envelopes: list[Envelope]) -> None:
        await self._publish([([queue], envelope) for envelope in envelopes])

    async def publish_routed(self, items: Sequence[tuple[str, Envelope]]) -> None:
        """One ``basic.publish`` per message and payload, routed by the broker to each of its
        queues (the ``CC`` header) and confirmed once for all of them. A publish the broker
        routes to no queue comes back (``mandatory``) and fails the call: the sender is not
        answered AA, the stored message stays for a resend or replay. (One routed to some of
        its queues only, another deleted by hand meanwhile, is confirmed: the broker accepts a
        message that reached any queue. The missing delivery stays QUEUED in the store, and
        once the queue is declared again, at the next reconnect or start, the sweeper puts it
        back.)"""
        await self._publish([(fanout.queues, fanout.envelopes[0])
                             for fanout in fanouts(items)])

    async def _publish(self, publishes: list[tuple[list[str], Envelope]]) -> None:
        if not publishes:
            return
        if not self._ready:
            raise UnavailableError("RabbitMQ is not connected")
        assert self._loop is not None
        pending = _Pending(self._loop.create_future(), len(publishes))
        self._outbox.extend((queues, envelope, pending) for queues, envelope in publishes)
        self._drain_outbox()
        try:
            await asyncio.wait_for(pending.future, self.publish_timeout)
        except TimeoutError as exc:
            raise UnavailableError(f"no confirm from RabbitMQ in {self.publish_timeout:.0f}s") \
                from exc

    # -- consuming (loop side) -------------------------------------------------------------

    async def subscribe(self, queue: str, handler: Handler, *, concurrency: int = 1) -> None:
        prefetch = self.prefetch or max(16, 4 * concurrency)
        subscription = _Subscription(queue, handler, concurrency, prefetch)
        self._subscriptions.append(subscription)
        assert self._loop is not None
        for index in range(concurrency):
            subscription.tasks.append(self._loop.create_task(
                self._consume(subscription), name=f"{queue}#{index}"))
        self._open_consumer(subscription, None)

    async def _consume(self, subscription: _Subscription) -> None:
        while True:
            generation, acks, tag, envelope = await subscription.inbox.get()
            while generation == self._generation:
                try:
                    await subscription.handler(envelope)
                except asyncio.CancelledError:
                    raise
                except DeadLetter:
                    self._settle(generation, acks, tag, False)
                except Exception as exc:
                    log.warning("redelivering", queue=subscription.queue,
                                message_id=envelope.message_id, error=type(exc).__name__)
                    await asyncio.sleep(self.redelivery_delay)
                    continue  # in place: a single consumer keeps its order
                else:
                    self._settle(generation, acks, tag, True)
                break
            # A delivery from an older connection is skipped: the broker redelivers it.

    # -- connection (callbacks run on the loop) ---------------------------------------------

    async def _run(self) -> None:
        delay = 0.2
        while not self._closing:
            opened_before = self._generation
            try:
                await asyncio.to_thread(self._declare_blocking, list(self._specs.values()))
                self._lost.clear()
                self._conn = AsyncioConnection(
                    self._params, on_open_callback=self._on_open,
                    on_open_error_callback=self._on_open_error,
                    on_close_callback=self._on_closed, custom_ioloop=self._loop)
                await self._lost.wait()
            except (pika.exceptions.AMQPError, OSError) as exc:
                log.debug("rabbitmq connect failed", error=f"{type(exc).__name__}: {exc}")
                self._check_refused(exc)
            except ConfigError as exc:
                log.error("rabbitmq topology rejected", error=str(exc))
            self._conn = None
            self._down(UnavailableError("RabbitMQ connection lost"))
            if self._closing:
                break
            if self._generation != opened_before:
                delay = 0.2  # it was up: retry soon
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()
            delay = min(delay * 2, self.reconnect_max)

    def _declare_blocking(self, specs: list[QueueSpec]) -> None:
        if not specs:
            return
        connection = pika.BlockingConnection(self._params)
        try:
            channel = connection.channel()
            for spec in specs:
                if spec.dead_letter:
                    channel.exchange_declare(spec.dead_letter, "fanout", durable=True)
                    channel = self._declare_queue(connection, channel, spec.dead_letter, None)
                    channel.queue_bind(spec.dead_letter, spec.dead_letter)
                channel = self._declare_queue(connection, channel, spec.name, spec)
        finally:
            with contextlib.suppress(Exception):
                connection.close()

    def _declare_queue(self, connection: pika.BlockingConnection, channel: Any, name: str,
                       spec: QueueSpec | None) -> Any:
        """Declare one queue as wanted; returns the channel to go on with (a refused declare
        closes it). Without an explicit ``queue_type`` a queue that exists as classic is kept
        (tried second; first for one already known classic, in case it was migrated since)."""
        types = [self.queue_type]
        if not self.queue_type_explicit:
            other = "classic" if self.queue_type == "quorum" else "quorum"
            types = [other, self.queue_type] if name in self.classic_queues else [
                self.queue_type, other]
        channel, queue_type, _, refused = declare_as_first(connection, channel, name, spec,
                                                           types)
        if queue_type is not None:
            if queue_type != self.queue_type:
                if name not in self.classic_queues:
                    self.classic_queues.add(name)
                    log.warning(
                        "rabbitmq queue kept classic", queue=name,
                        hint="it existed before quorum became the default; it works as it is. "
                             "To move it to quorum: stop every engine, then run `conduit bus "
                             "migrate-queues` (or put ?queue_type=classic in the bus URL to "
                             "keep classic queues)")
            else:
                self.classic_queues.discard(name)
            return channel
        # Both refused: say why the wanted type was refused unless the queue is of the other
        # type but differs in something else too (then that is what to fix).
        reason = refused[-1] if "x-queue-type" not in refused[-1].reply_text else refused[0]
        raise ConfigError([
            f"RabbitMQ queue {name} exists with other settings ({reason.reply_text}); delete "
            "it (rabbitmqctl delete_queue) once drained, or keep its settings (queue_type, "
            "ordered, partition_by); `conduit bus migrate-queues` moves classic queues to "
            "quorum without losing their messages"]) from reason

    def _on_open(self, connection: AsyncioConnection) -> None:
        if self._closing:
            connection.close()
            return
        connection.channel(on_open_callback=self._on_publish_channel)

    def _on_open_error(self, connection: AsyncioConnection, error: BaseException) -> None:
        log.debug("rabbitmq connection failed", error=f"{type(error).__name__}: {error}")
        self._check_refused(error)
        self._lost.set()

    def _on_closed(self, connection: AsyncioConnection, reason: BaseException) -> None:
        if self._ready and not self._closing:
            log.warning("rabbitmq connection lost, reconnecting", error=str(reason))
        self._ready = False
        self._lost.set()

    def _on_publish_channel(self, channel: PikaChannel) -> None:
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(ack_nack_callback=self._on_confirm,
                                 callback=lambda _frame: self._on_confirm_mode(channel))

    def _on_confirm_mode(self, channel: PikaChannel) -> None:
        self._pub = channel
        self._seq = 0
        self._lowest = 1
        self._generation += 1
        self._ready = True
        if self._generation > 1:
            log.info("rabbitmq connection restored")
        self._up.set()
        for subscription in self._subscriptions:
            self._open_consumer(subscription, self._generation)
        self._drain_outbox()

    def _on_channel_closed(self, channel: PikaChannel, reason: BaseException) -> None:
        """Any channel closed by the broker: start over with a fresh connection."""
        if self._closing:
            return
        log.warning("rabbitmq channel closed", error=str(reason))
        connection = self._conn
        if connection is not None and connection.is_open:
            connection.close()

    def _close_connection(self) -> None:
        self._ready = False
        connection = self._conn
        if connection is not None and connection.is_open:
            connection.close()

    def _down(self, error: BaseException) -> None:
        """The connection is gone: every publish not yet confirmed fails (the sender resends)."""
        self._ready = False
        self._pub = None
        failed = list(self._outstanding.values())
        self._outstanding.clear()
        failed.extend(pending for _, _, pending in self._outbox)
        self._outbox.clear()
        for pending in failed:
            pending.failed = pending.failed or error
            self._settle_pending(pending)
        self._flush_resolved()

    def _drain_outbox(self) -> None:
        channel = self._pub
        if channel is None or not self._ready:
            return
        while len(self._outstanding) < self.confirm_window and self._outbox:
            queues, envelope, pending = self._outbox.popleft()
            if pending.settled:
                continue
            self._seq += 1
            self._outstanding[self._seq] = pending
            self.operations.publishes += 1
            channel.basic_publish(
                "", queues[0], envelope.body,
                BasicProperties(delivery_mode=PERSISTENT, message_id=str(envelope.message_id),
                                correlation_id=str(self._seq),
                                headers=_headers(envelope, queues)),
                mandatory=True)

    def _on_return(self, channel: PikaChannel, method: Basic.Return, properties: BasicProperties,
                   body: bytes) -> None:
        """Routed to no queue (they are missing): fail that publish instead of losing the
        message. The broker returns it before it confirms it."""
        with contextlib.suppress(TypeError, ValueError):
            pending = self._outstanding.get(int(properties.correlation_id or 0))
            if pending is not None and pending.failed is None:
                cc = (properties.headers or {}).get(CC_HEADER) or []
                names = ", ".join([method.routing_key, *(
                    q.decode() if isinstance(q, bytes) else str(q) for q in cc)])
                pending.failed = UnavailableError(
                    f"queue {names} does not exist" if not cc
                    else f"none of the queues {names} exists")

    def _on_confirm(self, frame: Any) -> None:
        self.operations.confirms += 1
        method = frame.method
        tag, ok = method.delivery_tag, isinstance(method, Basic.Ack)
        if method.multiple:
            for seq in range(self._lowest, tag + 1):
                self._confirm(seq, ok)
            self._lowest = max(self._lowest, tag + 1)
        else:
            self._confirm(tag, ok)
            while self._lowest not in self._outstanding and self._lowest <= self._seq:
                self._lowest += 1
        self._flush_resolved()
        self._drain_outbox()

    def _confirm(self, seq: int, ok: bool) -> None:
        pending = self._outstanding.pop(seq, None)
        if pending is None:
            return
        if not ok and pending.failed is None:
            pending.failed = UnavailableError("RabbitMQ refused the message (nack)")
        pending.remaining -= 1
        if pending.remaining <= 0 or pending.failed is not None:
            self._settle_pending(pending)

    def _settle_pending(self, pending: _Pending) -> None:
        if not pending.settled:
            pending.settled = True
            self._resolved.append(pending)

    def _flush_resolved(self) -> None:
        if self._resolved:
            resolved, self._resolved = self._resolved, []
            _resolve_all(resolved)

    def _open_consumer(self, subscription: _Subscription, generation: int | None) -> None:
        connection = self._conn
        if not self._ready or connection is None or generation not in (None, self._generation):
            return  # opened by _on_confirm_mode once connected
        current = self._generation
        if subscription.generation == current:
            return
        subscription.generation = current

        def on_channel(channel: PikaChannel) -> None:
            channel.add_on_close_callback(self._on_channel_closed)
            acks = subscription.acks = _Acks(channel, self.operations)
            channel.basic_qos(prefetch_count=subscription.prefetch,
                              callback=lambda _frame: channel.basic_consume(
                                  subscription.queue,
                                  lambda _ch, method, properties, body: self._on_message(
                                      subscription, current, acks, method, properties, body)))

        connection.channel(on_open_callback=on_channel)

    def _on_message(self, subscription: _Subscription, generation: int, acks: _Acks,
                    method: Basic.Deliver, properties: BasicProperties, body: bytes) -> None:
        try:
            message_id = int(properties.message_id or 0)
        except ValueError:
            message_id = 0
        headers = properties.headers
        correlation_id = headers.get(CORRELATION_HEADER) if headers else None
        if isinstance(correlation_id, bytes):
            correlation_id = correlation_id.decode("utf-8", errors="replace")
        self.operations.deliveries += 1
        acks.received(method.delivery_tag)
        subscription.inbox.put_nowait(
            (generation, acks, method.delivery_tag,
             Envelope(message_id, body, correlation_id if isinstance(correlation_id, str)
                      else None, recheck=bool(headers and headers.get(RECHECK_HEADER)))))

    def _settle(self, generation: int, acks: _Acks, tag: int, ack: bool) -> None:
        if generation != self._generation or not acks.channel.is_open or self._conn is None:
            return  # that channel is gone; the broker redelivers the envelope
        assert self._loop is not None
        acks.settle(tag, ack, self._loop)


def declare_as_first(connection: pika.BlockingConnection, channel: Any, name: str,
                     spec: QueueSpec | None, types: Sequence[str],
                     ) -> tuple[Any, str | None, Any, list[pika.exceptions.ChannelClosedByBroker]]:
    """Declare queue ``name`` as the first of ``types`` the broker accepts. A queue's type is
    fixed once it exists, and a declare of another type is refused (406), which closes the
    channel: each try after a refusal opens another. Returns the channel to go on with, the type
    accepted (None: every one refused), the declare's answer and the refusals."""
    refused: list[pika.exceptions.ChannelClosedByBroker] = []
    for queue_type in types:
        try:
            frame = channel.queue_declare(name, durable=True,
                                          arguments=queue_arguments(spec, queue_type))
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != 406:
                raise
            refused.append(exc)
            channel = connection.channel()
            continue
        return channel, queue_type, frame, refused
    return channel, None, None, refused


def queue_arguments(spec: QueueSpec | None, queue_type: str) -> dict[str, Any]:
    """The ``queue.declare`` arguments of a queue (None: a dead-letter queue)."""
    arguments: dict[str, Any] = {"x-queue-type": queue_type}
    if spec is not None and spec.single_active:
        arguments["x-single-active-consumer"] = True
    if spec is not None and spec.dead_letter:
        arguments["x-dead-letter-exchange"] = spec.dead_letter
    return arguments


def _resolve_all(pendings: list[_Pending]) -> None:
    for pending in pendings:
        if pending.future.done():
            continue
        if pending.failed is not None:
            pending.future.set_exception(pending.failed)
        else:
            pending.future.set_result(None)


def safe_url(url: str) -> str:
    """``url`` without its user and password, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}:{parts.port or 5672}{parts.path}"


def wait_connected(bus: RabbitBus, timeout: float) -> bool:
    """Block until ``bus`` is connected (tests and tools)."""
    deadline = time.monotonic() + timeout
    while not bus.connected:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def remove_dead_letters(url: str, dead_letter_queue: str,
                        wanted: set[tuple[int, str]]) -> int:
    """Take out of ``dead_letter_queue`` the dead letters (message id, original queue) in
    ``wanted`` (they were re-queued from the store); leave the others. Returns how many."""
    parts = urlsplit(url)
    query = {k: v for k, v in parse_qsl(parts.query) if k not in OUR_OPTIONS}
    connection = pika.BlockingConnection(pika.URLParameters(
        urlunsplit(parts._replace(query=urlencode(query)))))
    removed = 0
    try:
        channel = connection.channel()
        count = channel.queue_declare(dead_letter_queue, passive=True).method.message_count
        for _ in range(count):
            method, properties, _body = channel.basic_get(dead_letter_queue, auto_ack=False)
            if method is None:
                break
            headers = properties.headers or {}
            origin = headers.get("x-first-death-queue")
            if isinstance(origin, bytes):
                origin = origin.decode()
            try:
                key = (int(properties.message_id or 0), str(origin))
            except ValueError:
                continue
            if key in wanted:
                channel.basic_ack(method.delivery_tag)
                removed += 1
        # The others were not acknowledged: closing the channel puts them back.
    finally:
        with contextlib.suppress(Exception):
            connection.close()
    return removed
