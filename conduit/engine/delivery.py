"""Delivering to one destination: retries with backoff, a breaker, a rate limit, bookkeeping.

One envelope at a time per handler call (the bus runs ``concurrency`` calls at once)::

    dedupe? already SENT in the store → done (a sweeper's copy: unless still QUEUED → done)
    an outcome held for it (sent, not yet recorded)? → record it, never send again
    loop: paused (outcomes unrecordable)? wait → breaker gate (wait while open) → rate limit
          → send
        success                → SENT
        PermanentError (AR/4xx) → ERROR with the reason
        RetryableError (connection, timeout, AE/CE, 5xx/429)
                               → attempt noted in the store; a failure that opens the breaker
                                 (or a failed trial) does not use up the message's retries;
                                 when they are used up → ERROR, or on an ordered destination
                                 hold: keep trying every ``retry.max`` and report the
                                 destination blocked (order must not be broken)
    the outcome is held (:mod:`conduit.engine.outcomes`) and recorded in the store; then ack
    (SENT) or dead-letter (ERROR). A store that cannot record it is retried with the outcome
    held (journalled on disk) and the destination paused, shown as an open breaker: the bus
    does not get the envelope back, so nothing is sent twice.

Delays come from :class:`~conduit.engine.resilience.Backoff` (tenacity waits with jitter); see
:mod:`conduit.engine.resilience` for the breaker and the rate limit. Every attempt is counted in
the store. Message bodies are never logged, and errors are logged in their viewers' form (the
receiver's words may quote the message: :mod:`conduit.core.reason`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import structlog

from conduit.bus import DeadLetter, Envelope
from conduit.connectors.base import DestinationConfig
from conduit.core.errors import DeliveryError, PermanentError, RetryableError
from conduit.core.observer import Observer
from conduit.core.protocols import Destination, Outbound
from conduit.core.reason import Reason, failure
from conduit.engine.events import EventLog
from conduit.engine.outcomes import Outcome, Outcomes
from conduit.engine.resilience import Backoff, Breaker, RateLimiter
from conduit.store import Store
from conduit.store.cluster import cluster_of
from conduit.store.replay import delivery_status

log = structlog.get_logger(__name__)

#: Called with (message id, message status after this delivery, receiver's response).
Settled = Callable[[int, str, bytes | None], None]
#: Longest wait between two attempts to record an outcome the store refused (s).
RECORD_RETRY_MAX = 5.0
#: How often an envelope whose message is being sent already looks again (rare: a copy).
RECHECK_WAIT = 0.05


class DeliveryWorker:
    """Consumes one destination's queue (or its partitions) and sends through its connector."""

    def __init__(self, channel: str, config: DestinationConfig, connector: Destination,
                 store: Store, settled: Settled, observer: Observer | None = None, *,
                 senders: int = 1, sends_correlation_id: bool = False,
                 journal: Path | None = None, events: EventLog | None = None) -> None:
        self.channel = channel
        #: The event log: breakers opening and closing, an ordered destination blocking.
        self.events = events
        self.observer = observer or Observer()
        self.config = config
        self.connector = connector
        self.store = store
        self.settled = settled
        #: The connector sends the correlation id (its registered spec says so).
        self.sends_correlation_id = sends_correlation_id
        self.backoff = Backoff(config.retry)
        # shared by the cluster's processes on a PostgreSQL store (store.cluster)
        cluster = cluster_of(store.engine)
        self.breaker = (Breaker(config.breaker, f"{channel}.{config.name}", cluster=cluster,
                                events=events, channel=channel)
                        if config.breaker else None)
        self.limiter = (RateLimiter(config.rate_limit, cluster=cluster,
                                    key=f"{channel}.{config.name}")
                        if config.rate_limit else None)
        self.holds = config.ordered or bool(config.partition_by)
        #: At most this many sends at once; more envelopes may be in hand, waiting for the store.
        self._senders = asyncio.Semaphore(senders)
        #: Why an ordered destination is holding its queue, or None while it flows.
        self.blocked: Reason | None = None
        #: The message it holds on while blocked.
        self.blocked_message: int | None = None
        #: Outcomes sent but not yet in the store; journalled under ``journal`` when it fails.
        self.outcomes = Outcomes(journal)
        if self.outcomes.load():
            log.warning("outcomes a previous run could not record: recorded before any send",
                        channel=channel, destination=config.name, count=len(self.outcomes))
        #: Why sends are paused (the store cannot record outcomes), or None.
        self.paused: str | None = None
        self._recordable = asyncio.Event()
        self._recordable.set()
        self.sent = 0
        self.failed = 0
        #: The last attempt failed (for a reason worth retrying): the receiver looks down.
        self.failing = False
        #: Message ids being delivered by this worker now.
        self._sending: set[int] = set()

    def state(self) -> dict[str, object]:
        """For the dashboard: breaker state, whether blocked (on which message, why: a
        :class:`Reason`), counts since start."""
        return {"breaker": self.breaker_state(),
                "breaker_failures": self.breaker.failures if self.breaker else 0,
                "breaker_failure_share": self.breaker.failure_share() if self.breaker else None,
                "blocked": self.blocked is not None, "blocked_reason": self.blocked,
                "paused": self.paused is not None, "paused_reason": self.paused,
                "blocked_message": self.blocked_message,
                "sent": self.sent, "failed": self.failed}

    def flowing(self) -> bool:
        """Sending: its last attempt did not fail and nothing stops it (an open breaker, a
        block, a pause). Only a flowing destination slows its channel's intake
        (:mod:`conduit.engine.backpressure`); one that is down lets its queue grow instead."""
        return (not self.failing and self.paused is None and self.blocked is None
                and (self.breaker is None or self.breaker.state != "open"))

    def breaker_state(self) -> str | None:
        """The breaker's state; ``open`` too while paused because outcomes cannot be recorded
        (to the dashboard, ``/metrics`` and the breaker alert it is one: nothing is sent)."""
        if self.paused is not None:
            return "open"
        return self.breaker.state if self.breaker else None

    async def handle(self, envelope: Envelope) -> None:
        began = time.perf_counter()
        message_id, recheck = envelope.message_id, envelope.recheck
        while message_id in self._sending:
            # another envelope of this message is being sent here (a sweeper's copy and its
            # original, taken together): this one waits, then goes only if still QUEUED
            recheck = True
            await asyncio.sleep(RECHECK_WAIT)
        self._sending.add(message_id)
        try:
            await self._deliver(envelope, recheck)
        finally:
            self._sending.discard(message_id)
            self.observer.timed(self.channel, "delivery", time.perf_counter() - began,
                                self.config.name)

    async def _deliver(self, envelope: Envelope, recheck: bool) -> None:
        out = Outbound(message_id=envelope.message_id, channel=self.channel,
                       destination=self.config.name, content=envelope.body,
                       correlation_id=envelope.correlation_id, message=envelope.parsed)
        outcome = self.outcomes.get(out.message_id)
        if outcome is None:
            if out.correlation_id is None and self.sends_correlation_id:
                # rebuilt from the store (recovery, reprocess) or over a bus that does not
                # carry it
                out.correlation_id = await asyncio.to_thread(self.store.correlation_id,
                                                             out.message_id)
            if recheck and await self._status(out.message_id) != "QUEUED":
                log.debug("swept copy of a delivery done meanwhile, skipped",
                          channel=self.channel, destination=self.config.name,
                          message_id=out.message_id)
                return
            if self.config.dedupe and await self._status(out.message_id) == "SENT":
                log.debug("already sent, skipped", channel=self.channel,
                          destination=self.config.name, message_id=out.message_id)
                return
            outcome = await self._send(out)
            self.outcomes.hold(out.message_id, outcome)
        else:
            log.info("sent before, not yet recorded: recording, not sending",
                     channel=self.channel, destination=self.config.name,
                     message_id=out.message_id)
        final = await self._record(out, outcome)
        self.outcomes.release(out.message_id)
        if outcome.status == "ERROR":
            self.settled(out.message_id, final, outcome.response)
            raise DeadLetter(outcome.error or "delivery failed")
        if final == "UNKNOWN":
            log.warning("sent a message the store does not have (a broker that outlived its "
                        "store?): nothing recorded", channel=self.channel,
                        destination=self.config.name, message_id=out.message_id)
        self.settled(out.message_id, final, outcome.response)

    async def _send(self, out: Outbound) -> Outcome:
        """Send until it succeeds or is given up; the outcome (not yet recorded)."""
        attempts = counted = 0
        free = self.breaker is None and self.limiter is None  # nothing to pass: no gate
        while True:
            if not self._recordable.is_set():  # paused while outcomes cannot be recorded
                await self._recordable.wait()
            try:
                async with self._senders:
                    if free:
                        attempts += 1
                        response = await self._send_once(out)
                    else:
                        async with self._gate():
                            attempts += 1
                            response = await self._send_once(out)
            except PermanentError as exc:
                if self.breaker:
                    self.breaker.success()  # the receiver answered: it is up
                return self._given_up(out, attempts, exc)
            except RetryableError as exc:
                self.failing = True
                opened = self.breaker.failure(exc) if self.breaker else False
                if not opened:
                    counted += 1
                await self._note_attempt(out, attempts, exc)
                self.observer.attempt_failed(self.channel, self.config.name, out.message_id)
                if counted >= self.config.retry.attempts:
                    if not self.holds:
                        return self._given_up(out, attempts, exc)
                    self._block(out, attempts, exc)
                    await asyncio.sleep(self.config.retry.max)
                elif not opened:
                    await asyncio.sleep(self.backoff.delay(counted))
                continue
            break
        if self.breaker:
            self.breaker.success()
        if self.blocked is not None:
            log.info("destination flowing again", channel=self.channel,
                     destination=self.config.name, message_id=out.message_id)
            if self.events is not None:
                self.events.record("destination.unblocked", f"ordered destination "
                                   f"{self.config.name} flowing again: message "
                                   f"{out.message_id} sent", channel=self.channel)
            self.blocked = self.blocked_message = None
        self.sent += 1
        self.failing = False
        return Outcome("SENT", attempts, response)

    async def _note_attempt(self, out: Outbound, attempts: int, exc: DeliveryError) -> None:
        """A failed attempt in the store, when it can take it: bookkeeping, not an outcome."""
        try:
            await self.store.attempt_failed(out.message_id, self.config.name, attempts,
                                            failure(exc))
        except Exception as error:
            log.warning("could not note a failed attempt in the store", channel=self.channel,
                        destination=self.config.name, message_id=out.message_id,
                        error=type(error).__name__)

    async def _record(self, out: Outbound, outcome: Outcome) -> str:
        """Record the outcome, retrying while the store refuses (journalled meanwhile, sends
        paused); the message's status afterwards."""
        delay = 0.1
        while True:
            try:
                final = await self.store.delivered(
                    out.message_id, self.config.name, outcome.status, attempts=outcome.attempts,
                    response=outcome.response, error=outcome.error)
            except asyncio.CancelledError:
                self.outcomes.journal(out.message_id)  # stopping: the next run records it
                raise
            except Exception as exc:
                reason = f"the store cannot record outcomes: {type(exc).__name__}"
                if self.paused is None:
                    log.error("destination paused: a send's outcome cannot be recorded; it is "
                              "held and not sent again", channel=self.channel,
                              destination=self.config.name, message_id=out.message_id,
                              error=type(exc).__name__)
                self.paused = reason
                self._recordable.clear()
                await asyncio.to_thread(self.outcomes.journal, out.message_id)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECORD_RETRY_MAX)
                continue
            self.observer.delivered(self.channel, self.config.name, out.message_id,
                                    outcome.status, final)
            if self.paused is not None:
                log.info("destination resumed: outcomes are recorded again",
                         channel=self.channel, destination=self.config.name)
                self.paused = None
                self._recordable.set()
            return final

    @contextlib.asynccontextmanager
    async def _gate(self) -> AsyncIterator[None]:
        if self.breaker is None:
            if self.limiter:
                await self.limiter.acquire()
            yield
            return
        async with self.breaker.gate():
            if self.limiter:
                await self.limiter.acquire()
            yield

    def _given_up(self, out: Outbound, attempts: int, exc: DeliveryError) -> Outcome:
        """ERROR with the reason: recorded, then the envelope is dead-lettered."""
        self.failed += 1
        reason = failure(exc)
        log.warning("delivery failed, dead-lettered", channel=self.channel,
                    destination=self.config.name, message_id=out.message_id, attempts=attempts,
                    error=reason.public)
        return Outcome("ERROR", attempts, exc.response, reason)

    def _block(self, out: Outbound, attempts: int, exc: DeliveryError) -> None:
        reason = failure(exc)
        if self.blocked is None:
            log.error("ordered destination blocked: holding its queue", channel=self.channel,
                      destination=self.config.name, message_id=out.message_id,
                      attempts=attempts, error=reason.public)
            if self.events is not None:
                self.events.record("destination.blocked", f"ordered destination "
                                   f"{self.config.name} blocked on message {out.message_id} "
                                   f"after {attempts} attempts: {reason.public}",
                                   channel=self.channel, level="error")
        self.blocked = Reason.of(f"message {out.message_id}: ", reason)
        self.blocked_message = out.message_id

    async def _status(self, message_id: int) -> str | None:
        """The delivery's status in the store (SENT: sent already; None: no such row)."""
        return await asyncio.to_thread(delivery_status, self.store, message_id,
                                       self.config.name)

    async def _send_once(self, out: Outbound) -> bytes:
        try:
            return await self.connector.send(out)
        except DeliveryError:
            raise
        except (OSError, TimeoutError) as exc:
            raise RetryableError(f"{type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # a connector bug must not kill the worker: keep it visible
            raise PermanentError(f"{type(exc).__name__}: {exc}") from exc
