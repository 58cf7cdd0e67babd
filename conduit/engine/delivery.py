"""Delivering to one destination: retries with backoff, a breaker, a rate limit, bookkeeping.

One envelope at a time per handler call (the bus runs ``concurrency`` calls at once)::

    dedupe? already SENT in the store → done (a sweeper's copy: unless still QUEUED → done)
    loop: breaker gate (wait while open) → rate limit → send
        success                → store SENT, ack
        PermanentError (AR/4xx) → store ERROR with the reason, dead-letter
        RetryableError (connection, timeout, AE/CE, 5xx/429)
                               → attempt noted in the store; a failure that opens the breaker
                                 (or a failed trial) does not use up the message's retries;
                                 when they are used up → store ERROR + dead-letter, or on an
                                 ordered destination hold: keep trying every ``retry.max`` and
                                 report the destination blocked (order must not be broken)

Delays come from :class:`~conduit.engine.resilience.Backoff` (tenacity waits with jitter); see
:mod:`conduit.engine.resilience` for the breaker and the rate limit. Every attempt is counted in
the store. Message bodies are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import structlog

from conduit.bus import DeadLetter, Envelope
from conduit.connectors.base import DestinationConfig
from conduit.core.errors import DeliveryError, PermanentError, RetryableError
from conduit.core.observer import Observer
from conduit.core.protocols import Destination, Outbound
from conduit.engine.resilience import Backoff, Breaker, RateLimiter
from conduit.store import Store
from conduit.store.replay import delivery_status

log = structlog.get_logger(__name__)

#: Called with (message id, message status after this delivery, receiver's response).
Settled = Callable[[int, str, bytes | None], None]
#: How often an envelope whose message is being sent already looks again (rare: a copy).
RECHECK_WAIT = 0.05


class DeliveryWorker:
    """Consumes one destination's queue (or its partitions) and sends through its connector."""

    def __init__(self, channel: str, config: DestinationConfig, connector: Destination,
                 store: Store, settled: Settled, observer: Observer | None = None, *,
                 senders: int = 1, sends_correlation_id: bool = False) -> None:
        self.channel = channel
        self.observer = observer or Observer()
        self.config = config
        self.connector = connector
        self.store = store
        self.settled = settled
        #: The connector sends the correlation id (its registered spec says so).
        self.sends_correlation_id = sends_correlation_id
        self.backoff = Backoff(config.retry)
        self.breaker = (Breaker(config.breaker, f"{channel}.{config.name}")
                        if config.breaker else None)
        self.limiter = RateLimiter(config.rate_limit) if config.rate_limit else None
        self.holds = config.ordered or bool(config.partition_by)
        #: At most this many sends at once; more envelopes may be in hand, waiting for the store.
        self._senders = asyncio.Semaphore(senders)
        #: Why an ordered destination is holding its queue, or None while it flows.
        self.blocked: str | None = None
        self.sent = 0
        self.failed = 0
        #: Message ids being delivered by this worker now.
        self._sending: set[int] = set()

    def state(self) -> dict[str, object]:
        """For the dashboard: breaker state, whether blocked, counts since start."""
        return {"breaker": self.breaker.state if self.breaker else None,
                "breaker_failures": self.breaker.failures if self.breaker else 0,
                "blocked": self.blocked is not None, "blocked_reason": self.blocked,
                "sent": self.sent, "failed": self.failed}

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
        if out.correlation_id is None and self.sends_correlation_id:
            # rebuilt from the store (recovery, reprocess) or over a bus that does not carry it
            out.correlation_id = await asyncio.to_thread(self.store.correlation_id,
                                                         out.message_id)
        if recheck and await self._status(out.message_id) != "QUEUED":
            log.debug("swept copy of a delivery done meanwhile, skipped", channel=self.channel,
                      destination=self.config.name, message_id=out.message_id)
            return
        if self.config.dedupe and await self._status(out.message_id) == "SENT":
            log.debug("already sent, skipped", channel=self.channel,
                      destination=self.config.name, message_id=out.message_id)
            return
        attempts = counted = 0
        free = self.breaker is None and self.limiter is None  # nothing to pass: no gate
        while True:
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
                await self._give_up(out, attempts, exc)
            except RetryableError as exc:
                opened = self.breaker.failure(exc) if self.breaker else False
                if not opened:
                    counted += 1
                await self.store.attempt_failed(out.message_id, self.config.name, attempts,
                                                str(exc))
                self.observer.attempt_failed(self.channel, self.config.name, out.message_id)
                if counted >= self.config.retry.attempts:
                    if not self.holds:
                        await self._give_up(out, attempts, exc)
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
            self.blocked = None
        self.sent += 1
        final = await self.store.delivered(out.message_id, self.config.name, "SENT",
                                           attempts=attempts, response=response, error=None)
        self.observer.delivered(self.channel, self.config.name, out.message_id, "SENT", final)
        if final == "UNKNOWN":
            log.warning("sent a message the store does not have (a broker that outlived its "
                        "store?): nothing recorded", channel=self.channel,
                        destination=self.config.name, message_id=out.message_id)
        self.settled(out.message_id, final, response)

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

    async def _give_up(self, out: Outbound, attempts: int, exc: DeliveryError) -> None:
        """Store ERROR with the reason, then dead-letter the envelope; the others flow on."""
        self.failed += 1
        log.warning("delivery failed, dead-lettered", channel=self.channel,
                    destination=self.config.name, message_id=out.message_id, attempts=attempts,
                    error=str(exc))
        final = await self.store.delivered(out.message_id, self.config.name, "ERROR",
                                           attempts=attempts, response=exc.response,
                                           error=str(exc))
        self.observer.delivered(self.channel, self.config.name, out.message_id, "ERROR", final)
        self.settled(out.message_id, final, exc.response)
        raise DeadLetter(str(exc)) from exc

    def _block(self, out: Outbound, attempts: int, exc: DeliveryError) -> None:
        if self.blocked is None:
            log.error("ordered destination blocked: holding its queue", channel=self.channel,
                      destination=self.config.name, message_id=out.message_id,
                      attempts=attempts, error=str(exc))
        self.blocked = f"message {out.message_id}: {exc}"

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
