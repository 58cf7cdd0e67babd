"""What every connector shares: the policy fields every source and destination config has, and
the context it is built with (the protocols are in :mod:`conduit.core.protocols`).

A connector is one module in ``conduit/connectors/``: a pydantic config (``type: Literal[...]``,
``extra="forbid"``) and a class implementing :class:`Source` or :class:`Destination`, registered
beside its constructor with :func:`conduit.core.registry.source` or
:func:`~conduit.core.registry.destination`, which also declare what it can do (the data type a
source carries, whether a destination sends the correlation id). The engine imports every
module of this package (:mod:`conduit.engine.components`) and builds the channel model's
``source:`` and ``destinations:`` unions from the registry, so a new connector is one new module
plus its test, with no change anywhere else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Protocol

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from conduit.connectors.listening import ListeningSockets
from conduit.core.duration import Duration, parse_duration
from conduit.transforms.filter import Condition


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


def _window(value: object) -> int | float:
    """``20`` (the last 20 calls) stays a count; ``"60s"`` becomes seconds (a float)."""
    if isinstance(value, bool):
        raise ValueError("a window is a number of calls (20) or a duration ('60s')")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return parse_duration(value)


Window = Annotated[
    int | float,
    BeforeValidator(_window),
    WithJsonSchema({
        "anyOf": [{"type": "integer", "minimum": 1},
                  {"type": "string", "pattern": r"^\d+(\.\d+)?(ms|s|m|h|d)$"}],
        "description": "The last N calls (a number), or the calls of the last T (a duration "
                       "with a unit: 30s, 5m).",
    }),
]


class BreakerPolicy(StrictModel):
    """A circuit breaker: after ``failures`` in a row, or (with ``failure_rate``) when that
    share of the calls in the sliding ``window`` failed, the destination pauses for ``reset``,
    then one trial send decides (closed on success, open again on failure)."""

    failures: int = Field(
        5, ge=1, examples=[5],
        description="Consecutive failed sends (across messages) that open the breaker. While "
                    "it is open nothing is sent and the destination's messages wait in its "
                    "queue; a failure that opens the breaker does not use up the message's "
                    "retries. HL7 AE/CE answers do not count: the receiver is up.")
    failure_rate: float | None = Field(
        None, gt=0, le=1, examples=[0.5],
        description="Also open when at least this share of the calls in `window` failed (0.5: "
                    "half), once `min_calls` calls are in it: a receiver failing every other "
                    "send never fails `failures` in a row. Off when not set.")
    window: Window = Field(
        20, examples=[20, "60s"],
        description="The sliding window `failure_rate` looks at: the last N calls (20), or "
                    "the calls of the last T ('60s').")
    min_calls: int = Field(
        10, ge=1, examples=[10],
        description="Calls the window must hold before `failure_rate` may open the breaker.")
    reset: Duration = Field(60.0, description="How long it stays open before a trial send; a "
                                              "successful trial closes it.",
                            examples=["60s", "30s"])

    @property
    def window_calls(self) -> int | None:
        """The window as a number of calls, or None when it is a duration."""
        return self.window if isinstance(self.window, int) else None

    @property
    def window_seconds(self) -> float | None:
        """The window as seconds, or None when it is a number of calls."""
        return None if isinstance(self.window, int) else float(self.window)

    @model_validator(mode="after")
    def _window_is_positive(self) -> BreakerPolicy:
        if self.window <= 0:
            raise ValueError("window must hold at least one call (or last more than 0 s)")
        return self


class SourceConfig(StrictModel):
    """Fields every source has."""

    type: str
    ack: Literal["after-commit", "after-delivery"] = Field(
        "after-commit",
        description="When the sender gets its positive answer: once the message is durable "
                    "(after-commit), or once every destination has it (after-delivery, passing "
                    "the receiver's response back).")


class ListenerConfig(SourceConfig):
    """A source that listens on a TCP port (MLLP, HTTP, SOAP, FHIR): the engine checks that no
    two channels claim one port, and names the address when it cannot listen."""

    host: str = Field("0.0.0.0", description="Address to listen on.", examples=["127.0.0.1"])
    port: int = Field(ge=0, le=65535, description="TCP port (0 = any free port).",
                      examples=[2575])


class DestinationConfig(StrictModel):
    """Fields every destination has, whatever its type."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                      description="Unique within the channel; names the queue and the store rows.",
                      examples=["archive", "fhir-repo"])
    type: str
    when: Condition | None = Field(
        None, description="Send only messages that pass this filter; others are FILTERED here. "
                           "HL7 v2: read after the steps that edit fields; JSON, FHIR, XML "
                           "('json', 'xpath'): read from the message as received.")
    retry: RetryPolicy = Field(default_factory=RetryPolicy,  # type: ignore[arg-type]
                               description="Retries of retryable failures.")
    breaker: BreakerPolicy | None = Field(
        None, description="Circuit breaker for this receiver.",
        examples=[{"failures": 5, "reset": "60s"},
                  {"failure_rate": 0.5, "window": 20, "min_calls": 10, "reset": "30s"}])
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
        description="Most messages sent per second, minute or hour (for the whole cluster on a "
                    "PostgreSQL store, else per engine process), as EHR "
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

    @field_validator("partition_by")
    @classmethod
    def _partition_key_reads(cls, value: str | None) -> str | None:
        """A template compiles, a path parses: a ValueError here is shown at its own line."""
        if value and "{{" in value:
            from conduit.transforms.template import check_template

            check_template(value)
        elif value:
            from conduit.hl7.path import parse_path

            parse_path(value)  # ValueError names the expected form
        return value

    @model_validator(mode="after")
    def _ordering_is_consistent(self) -> DestinationConfig:
        if self.ordered and self.partition_by:
            raise ValueError("use either 'ordered' (one queue in order) or 'partition_by' "
                             "(in order per key), not both")
        if (self.ordered or self.partition_by) and (self.concurrency or 1) > 1:
            raise ValueError("an ordered or partitioned destination sends one message at a "
                             "time per queue: remove 'concurrency'")
        return self


class TokenCache(Protocol):
    """Where OAuth2 tokens are kept beyond one process: on a PostgreSQL store, the cluster's
    (``store.cluster.SharedTokens``), so one fetch serves every engine process."""

    async def token(self, key: str, secret: bytes,
                    fetch: Callable[[], Awaitable[tuple[str, float]]], *,
                    margin: float, stale: str | None = None) -> tuple[str, float]:
        """A token for ``key`` with more than ``margin`` seconds left, and its seconds left:
        the stored one (unless it is ``stale``, refused by the server) or a new one from ``fetch``
        and stored; ``secret`` (the client's) keys the encryption of what is stored."""
        ...


@dataclass(frozen=True, slots=True)
class ConnectorContext:
    """What a connector may know of the engine around it (no globals: passed in at build).
    ``listening``: the channel's listening sockets, which a redeployed listener takes over
    (see :mod:`conduit.connectors.listening`); None: bind afresh."""

    channel: str
    data_dir: Path
    listening: ListeningSockets | None = None
    #: The cluster's OAuth2 token cache (PostgreSQL store), or None: tokens stay in process.
    tokens: TokenCache | None = None

