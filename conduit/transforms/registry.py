"""What a transform step is: a configured callable over a :class:`StepState`.

A step is a configured callable (as structlog processors are): options arrive in ``__init__``,
the work happens in ``__call__(state)``, and nothing does hidden I/O per message. A new step kind
is one module in ``conduit/transforms/`` that decorates its class with
:func:`conduit.core.registry.step`, declaring beside it the data types it needs and produces
(``needs=("hl7v2",)``: ``conduit validate`` refuses it in a channel whose messages are not
HL7 v2). The engine imports every module of this package (:mod:`conduit.engine.components`) and
builds the channel model's ``transform:`` union from the registry: nothing else to edit.

In YAML a step is a one-key mapping, the key naming the kind::

    transform:
      - set: {field: PID-5.1, value: "{{ msg['PID-5.1'] | upper }}"}
      - delete: {field: ZPI}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from conduit.hl7.message import Message


@dataclass(slots=True)
class StepState:
    """What steps work on for one message.

    ``message`` is changed in place by field steps; ``body`` is set by a step that produces the
    outbound content itself (a template, a FHIR conversion), and is then what destinations get;
    ``variables`` carries values between steps (and into templates as ``vars``).
    """

    message: Message
    body: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    timezone: str | None = None
    """The channel's ``timezone:`` (IANA name), None when it names none."""
    default_timezone: str | None = None
    """The zone when neither the channel nor the message says: the engine default, else the
    host's (see :mod:`conduit.core.timezone`)."""


class Step(Protocol):
    """A configured transform step."""

    label: str
    """Short and free of message data, e.g. ``set PID-5.1``; names the step in errors/traces."""

    def __call__(self, state: StepState) -> None: ...


class StepOptions(BaseModel):
    """Base of every step's options: unknown keys are errors; options never change once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)
