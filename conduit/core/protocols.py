"""The protocols between the engine and its connectors: what a source hands in (``Inbound``),
what it gets back (``Receipt``), and what a destination is asked to send (``Outbound``).

They sit in the bottom layer so that connectors, the engine and the tools that drive them all
speak the same types without importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(slots=True)
class Receipt:
    """What the engine answers a source for one inbound message.

    ``accepted`` is true only once the message is committed to the store and confirmed by the bus
    (or, with ``ack: after-delivery``, once every destination has finished). ``error`` is a
    readable reason without message content; ``response`` is the receiver's answer passed back in
    after-delivery mode.
    """

    accepted: bool
    message_id: int | None = None
    error: str | None = None
    filtered: bool = False
    response: bytes | None = None
    permanent: bool = False
    """Not accepted because of the message itself (unreadable, invalid): resending cannot help
    (HTTP 400/422 rather than 503)."""
    resend: bool = False
    """Not accepted and not kept for processing (the store or the bus was unavailable): the
    sender must send it again (an HL7 commit ACK says CE, never CA)."""


class Inbound(Protocol):
    """The engine side a source hands messages to."""

    async def receive(self, raw: bytes, meta: dict[str, Any] | None = None) -> Receipt:
        """Store ``raw`` durably and queue it; answer only when that is done (or failed)."""
        ...

    async def reject(self, raw: bytes, reason: str,
                     meta: dict[str, Any] | None = None) -> int | None:
        """Keep a message the source could not accept (status ERROR) so an operator can see it."""
        ...


class Source(Protocol):
    """A listener or poller that feeds one channel."""

    async def start(self, inbound: Inbound) -> None:
        """Begin accepting; return once listening (so callers can connect right after)."""
        ...

    async def stop(self) -> None: ...

    def describe(self) -> str:
        """Where it listens, for the operator: ``mllp://127.0.0.1:2575``."""
        ...


@dataclass(slots=True)
class Outbound:
    """One message as a destination is asked to send it."""

    message_id: int
    channel: str
    destination: str
    content: bytes
    variables: dict[str, Any] = field(default_factory=dict)
    correlation_id: str | None = None
    """The id the message came in with (sender's ``X-Request-Id``, MSH-10 or a new one); the
    HTTP, FHIR and SOAP destinations send it as ``X-Request-Id``. A destination registered with
    ``sends_correlation_id=True`` gets it even on envelopes rebuilt from the store."""
    message: object | None = None
    """``content`` parsed (a :class:`conduit.hl7.message.Message`), when the engine already has
    it in this process: a connector that reads fields (a file path template, an MLLP ACK check)
    uses it instead of parsing. Typed ``object`` so the bottom layer needs no HL7 import."""


class Destination(Protocol):
    """A sender that delivers to one receiver.

    ``send`` returns the receiver's response (or ``b""``) on success and raises
    :class:`~conduit.core.errors.RetryableError` or :class:`~conduit.core.errors.PermanentError`
    on failure; retries, breakers and bookkeeping are the engine's, not the connector's.
    """

    async def send(self, out: Outbound) -> bytes: ...

    async def close(self) -> None: ...
