"""Delivering to one destination: retries with backoff, bookkeeping in the store.

Only retryable failures are retried (connection errors, timeouts, HL7 AE/CE); a permanent failure
(AR/CR, a bad template) ends the delivery at once. Every attempt is counted in the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
    wait_fixed,
)

from conduit.connectors.base import Destination, DestinationConfig, Outbound
from conduit.engine.bus import Envelope
from conduit.engine.errors import DeliveryError, PermanentError, RetryableError
from conduit.engine.store import Store

log = structlog.get_logger(__name__)

#: Called with (message id, message status after this delivery, receiver's response).
Settled = Callable[[int, str, bytes | None], None]


class DeliveryWorker:
    """Consumes one destination's queue and sends each envelope through its connector."""

    def __init__(self, channel: str, config: DestinationConfig, connector: Destination,
                 store: Store, settled: Settled) -> None:
        self.channel = channel
        self.config = config
        self.connector = connector
        self.store = store
        self.settled = settled
        policy = config.retry
        self._wait = (wait_fixed(policy.initial) if policy.backoff == "fixed"
                      else wait_exponential_jitter(multiplier=policy.initial, max=policy.max,
                                                jitter=policy.initial))

    async def handle(self, envelope: Envelope) -> None:
        out = Outbound(message_id=envelope.message_id, channel=self.channel,
                       destination=self.config.name, content=envelope.body)
        attempts = 0
        response: bytes | None = None
        status, error = "SENT", None
        retrying = AsyncRetrying(stop=stop_after_attempt(self.config.retry.attempts),
                                 wait=self._wait, retry=retry_if_exception_type(RetryableError),
                                 reraise=True)
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    response = await self._send_once(out, attempts)
        except DeliveryError as exc:
            status, error, response = "ERROR", str(exc), exc.response
            log.warning("delivery failed", channel=self.channel, destination=self.config.name,
                        message_id=out.message_id, attempts=attempts, error=error)
        final = await self.store.delivered(out.message_id, self.config.name, status,
                                           attempts=attempts, response=response, error=error)
        self.settled(out.message_id, final, response)

    async def _send_once(self, out: Outbound, attempt: int) -> bytes:
        try:
            return await self.connector.send(out)
        except RetryableError as exc:
            await self.store.attempt_failed(out.message_id, self.config.name, attempt, str(exc))
            raise
        except DeliveryError:
            raise
        except (OSError, asyncio.TimeoutError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            await self.store.attempt_failed(out.message_id, self.config.name, attempt, reason)
            raise RetryableError(reason) from exc
        except Exception as exc:  # a connector bug must not kill the worker: keep it visible
            raise PermanentError(f"{type(exc).__name__}: {exc}") from exc
