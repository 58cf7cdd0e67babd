"""What every connector offers: the Source and Destination protocols, and the one registry.

A connector is one module in ``conduit/connectors/``: a pydantic config (``type: Literal[...]``,
``extra="forbid"``) and a class implementing :class:`Source` or :class:`Destination`, registered
with :func:`source` or :func:`destination` beside its constructor (as Redpanda Connect does).
The channel model builds its ``source:`` and ``destinations:`` unions from this registry, so a
new connector needs no change anywhere else but the import list in
``conduit/connectors/__init__.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from conduit.hl7.message import Message


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
    HTTP, FHIR and SOAP destinations send it as ``X-Request-Id``. A destination that wants it
    even on envelopes rebuilt from the store sets ``sends_correlation_id = True``."""
    message: Message | None = None
    """``content`` parsed as HL7 v2, when the engine already has it (same process): a connector
    that reads fields (a file path template, an MLLP ACK check) uses it instead of parsing."""


class Destination(Protocol):
    """A sender that delivers to one receiver.

    ``send`` returns the receiver's response (or ``b""``) on success and raises
    :class:`~conduit.engine.errors.RetryableError` or :class:`~conduit.engine.errors.PermanentError`
    on failure; retries, breakers and bookkeeping are the engine's, not the connector's.
    """

    async def send(self, out: Outbound) -> bytes: ...

    async def close(self) -> None: ...


C = TypeVar("C", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Registration:
    kind: str
    config: type[BaseModel]
    factory: Callable[..., Any]


SOURCES: dict[str, Registration] = {}
DESTINATIONS: dict[str, Registration] = {}


def source(kind: str, config: type[BaseModel]) -> Callable[[Callable[..., Any]], Any]:
    """Register a source class (constructed as ``cls(config, context)``) under ``type: kind``."""

    def register(factory: Callable[..., Any]) -> Any:
        SOURCES[kind] = Registration(kind, config, factory)
        return factory

    return register


def destination(kind: str, config: type[BaseModel]) -> Callable[[Callable[..., Any]], Any]:
    """Register a destination class, built as ``cls(config, context)``, under ``type: kind``."""

    def register(factory: Callable[..., Any]) -> Any:
        DESTINATIONS[kind] = Registration(kind, config, factory)
        return factory

    return register


# --- configuration shared by every connector -------------------------------------------------

from typing import Literal  # noqa: E402

from pydantic import ConfigDict, Field, model_validator  # noqa: E402

from conduit.engine.duration import Duration  # noqa: E402
from conduit.transforms.filter import Condition  # noqa: E402


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")


class RetryPolicy(StrictModel):
    """How often and how patiently a destination retries a retryable failure."""

    attempts: int = Field(
        5, ge=1, examples=[8],
        description="Attempts in all, the first included. Only retryable failures are retried "
                    "(connection errors, timeouts, HL7 AE/CE, HTTP 5xx/429), never AR/CR or "
                    "HTTP 4xx. After the last one the message is dead-lettered (status ERROR), "
                    "or, on an ordered destination, the destination holds and reports itself "
                    "blocked.")
    backoff: Literal["exponential", "fixed"] = Field(
        "exponential", examples=["exponential"],
        description="exponential: the delay doubles after each failed attempt, from 'initial' "
                    "up to 'max'; fixed: always 'initial'.")
    initial: Duration = Field(1.0, description="Delay before the second attempt (at most).",
                              examples=["1s", "500ms"])
    max: Duration = Field(30.0, description="Longest delay between attempts (a true maximum, "
                                            "jitter included).", examples=["5m"])
    jitter: float = Field(
        0.2, ge=0, le=1, examples=[0.2],
        description="Fraction of each exponential delay drawn at random and taken off it, so "
                    "that many messages failing together do not retry in lock-step: with 0.2 a "
                    "10 s delay becomes 8-10 s.")


class BreakerPolicy(StrictModel):
    """A circuit breaker: after ``failures`` in a row the destination pauses for ``reset``."""

    failures: int = Field(
        5, ge=1, examples=[5],
        description="Consecutive failed sends (across messages) that open the breaker. While "
                    "it is open nothing is sent and the destination's messages wait in its "
                    "queue; a failure that opens the breaker does not use up the message's "
                    "retries. HL7 AE/CE answers do not count: the receiver is up.")
    reset: Duration = Field(60.0, description="How long it stays open before a trial send; a "
                                              "successful trial closes it.",
                            examples=["60s", "30s"])


class SourceConfig(StrictModel):
    """Fields every source has."""

    type: str
    ack: Literal["after-commit", "after-delivery"] = Field(
        "after-commit",
        description="When the sender gets its positive answer: once the message is durable "
                    "(after-commit), or once every destination has it (after-delivery, passing "
                    "the receiver's response back).")


class DestinationConfig(StrictModel):
    """Fields every destination has, whatever its type."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                      description="Unique within the channel; names the queue and the store rows.",
                      examples=["archive", "fhir-repo"])
    type: str
    when: Condition | None = Field(
        None, description="Send only messages that pass this filter; others are FILTERED here.")
    retry: RetryPolicy = Field(default_factory=RetryPolicy,  # type: ignore[arg-type]
                               description="Retries of retryable failures.")
    breaker: BreakerPolicy | None = Field(
        None, description="Circuit breaker for this receiver.",
        examples=[{"failures": 5, "reset": "60s"}])
    ordered: bool = Field(
        False, examples=[True],
        description="Strict first-in first-out delivery, even with several worker processes "
                    "(one active consumer at a time). A message that keeps failing holds the "
                    "queue (the destination reports itself blocked) instead of being "
                    "dead-lettered.")
    partition_by: str | None = Field(
        None, examples=["PID-3.1", "{{ msg['PID-3.1'] }}"],
        description="Keep order per value of this field path or template (e.g. per patient) "
                    "while messages with different values go in parallel: the destination's "
                    "queue is split in 'partitions' sub-queues by a hash of the value, each "
                    "ordered. Read from the message as received.")
    partitions: int = Field(4, ge=1, le=256, examples=[8],
                            description="Number of ordered sub-queues with 'partition_by'.")
    rate_limit: str | None = Field(
        None, pattern=r"^\s*\d+(\.\d+)?\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$",
        examples=["100/min", "5/s"],
        description="Most messages sent per second, minute or hour (per engine process), as EHR "
                    "APIs impose; messages beyond it wait in the queue.")
    concurrency: int | None = Field(
        None, ge=1, le=256, examples=[4],
        description="Messages sent to this destination at once, per engine process; default "
                    "the engine's --workers (always 1 when ordered or partitioned).")
    dedupe: bool = Field(
        False, examples=[True],
        description="Send each message id at most once per successful delivery, even when the "
                    "bus redelivers it after a crash (the store's delivery status is checked "
                    "before sending; an explicit reprocess still sends again).")

    @model_validator(mode="after")
    def _ordering_is_consistent(self) -> DestinationConfig:
        if self.partition_by and "{{" in self.partition_by:
            from conduit.transforms.template import check_template

            check_template(self.partition_by)
        elif self.partition_by:
            from conduit.hl7.path import parse_path

            parse_path(self.partition_by)  # ValueError names the expected form
        if self.ordered and self.partition_by:
            raise ValueError("use either 'ordered' (one queue in order) or 'partition_by' "
                             "(in order per key), not both")
        if (self.ordered or self.partition_by) and (self.concurrency or 1) > 1:
            raise ValueError("an ordered or partitioned destination sends one message at a "
                             "time per queue: remove 'concurrency'")
        return self


@dataclass(frozen=True, slots=True)
class ConnectorContext:
    """What a connector may know of the engine around it (no globals: passed in at build)."""

    channel: str
    data_dir: Path


def build_source(config: SourceConfig, context: ConnectorContext) -> Source:
    return SOURCES[config.type].factory(config, context)


def build_destination(config: DestinationConfig, context: ConnectorContext) -> Destination:
    return DESTINATIONS[config.type].factory(config, context)
