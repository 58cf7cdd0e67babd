"""The registry of transform step kinds: one YAML key, one options model, one step class.

A step is a configured callable (as structlog processors are): options arrive in ``__init__``,
the work happens in ``__call__(state)``, and nothing does hidden I/O per message. A new step kind
is one module in ``conduit/transforms/`` that decorates its class with :func:`step` and is named
in :data:`STEP_MODULES`; the channel model builds its ``transform:`` union from :data:`STEPS`.

In YAML a step is a one-key mapping, the key naming the kind::

    transform:
      - set: {field: PID-5.1, value: "{{ msg['PID-5.1'] | upper }}"}
      - delete: {field: ZPI}
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from conduit.hl7.message import Message

STEP_MODULES: tuple[str, ...] = (
    "conduit.transforms.fields",
    "conduit.transforms.template_step",
    "conduit.transforms.hl7v2_to_fhir",
    "conduit.transforms.fhir_to_hl7v2",
    "conduit.transforms.xml_steps",
    "conduit.transforms.json_map",
    "conduit.transforms.lookup",
    "conduit.transforms.hl7_version",
    "conduit.transforms.python_step",
)
"""Modules that register the built-in step kinds; add yours here."""


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
    host's (see :mod:`conduit.engine.timezone`)."""


class Step(Protocol):
    """A configured transform step."""

    label: str
    """Short and free of message data, e.g. ``set PID-5.1``; names the step in errors/traces."""

    def __call__(self, state: StepState) -> None: ...


class StepOptions(BaseModel):
    """Base of every step's options: unknown keys are errors; options never change once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


OptionsT = TypeVar("OptionsT", bound=StepOptions)


@dataclass(frozen=True, slots=True)
class StepKind:
    key: str
    options: type[StepOptions]
    factory: Callable[[Any], Step]
    description: str


STEPS: dict[str, StepKind] = {}


def step(key: str, options: type[OptionsT]) -> Callable[[Callable[[OptionsT], Step]], Any]:
    """Register a step class (constructed as ``cls(options)``) under the YAML key ``key``."""

    def register(factory: Callable[[OptionsT], Step]) -> Any:
        doc = (factory.__doc__ or options.__doc__ or key).strip().splitlines()[0]
        STEPS[key] = StepKind(key, options, factory, doc)
        return factory

    return register


def load_step_kinds() -> dict[str, StepKind]:
    """Import every step module so each registers itself; answer the registry."""
    for name in STEP_MODULES:
        importlib.import_module(name)
    return STEPS


def build_step(key: str, options: StepOptions) -> Step:
    """The step object for one configured step."""
    return STEPS[key].factory(options)
