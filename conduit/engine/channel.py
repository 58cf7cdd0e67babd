"""The channel model: what one YAML channel file says, validated and typed.

The ``source:`` and ``destinations:`` unions are built from the connector registry and the
``transform:`` union from the step registry, so a new connector or step kind needs no change here.
Every union is discriminated by a callable (on ``type``, or on a step's single key) whose tags
start with ``@``; the loader drops those tags from error locations, which keeps errors readable
(``destinations[0].pth``, never the union's internals).

The JSON Schema of :class:`Channel` (:mod:`conduit.engine.schema`, ``conduit schema``) gives
editors completion and help.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeAlias, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, PrivateAttr, Tag, create_model
from pydantic import field_validator as _field_validator
from pydantic import model_validator as _model_validator

import conduit.connectors  # noqa: F401  (importing registers every connector)
from conduit.connectors.base import (
    DESTINATIONS,
    SOURCES,
    DestinationConfig,
    Registration,
    SourceConfig,
)
from conduit.engine.timezone import check_zone
from conduit.transforms.filter import Condition
from conduit.transforms.registry import StepKind, StepOptions, load_step_kinds

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
HL7_FIELD_STEPS = frozenset({"set", "copy", "delete"})
"""Steps that need an HL7 v2 message (not usable with another data_type)."""


def _type_tag(registry: dict[str, Registration]) -> Any:
    def tag(value: Any) -> str | None:
        kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
        return f"@{kind}" if isinstance(kind, str) and kind in registry else None

    return tag


def _connector_union(registry: dict[str, Registration], what: str) -> Any:
    """``Annotated[A | B | ..., Discriminator]`` over every registered config, keyed by ``type``."""
    kinds = sorted(registry)
    members = tuple(Annotated[registry[k].config, Tag(f"@{k}")] for k in kinds)
    return Annotated[
        Union[members],  # noqa: UP007  (a runtime tuple of members)
        Discriminator(
            _type_tag(registry),
            custom_error_type=f"{what}_type",
            custom_error_message=f"'type' must be one of: {', '.join(kinds)}",
        ),
    ]


class StepEntry(BaseModel):
    """One transform step as written: a mapping with a single key naming the step kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    KIND: ClassVar[str] = ""

    @property
    def kind(self) -> str:
        """The step kind, i.e. its YAML key (``set``, ``template``...)."""
        return self.KIND

    @property
    def options(self) -> StepOptions:
        return getattr(self, "opts")  # noqa: B009  (each generated subclass defines it)


def _entry_model(kind: StepKind) -> type[StepEntry]:
    name = "".join(part.capitalize() for part in kind.key.replace("_", "-").split("-")) + "Step"
    model = create_model(
        name,
        __base__=StepEntry,
        __doc__=kind.description,
        opts=(kind.options, Field(alias=kind.key, description=kind.description)),
    )
    model.model_config["title"] = name
    model.KIND = kind.key
    return model


def _step_tag(steps: dict[str, StepKind]) -> Any:
    def tag(value: Any) -> str | None:
        if isinstance(value, StepEntry):
            return f"@{value.kind}"
        if isinstance(value, dict) and len(value) == 1:
            (key,) = value
            return f"@{key}" if key in steps else None
        return None

    return tag


def _step_union() -> Any:
    steps = load_step_kinds()
    members = tuple(Annotated[_entry_model(steps[k]), Tag(f"@{k}")] for k in steps)
    return Annotated[
        Union[members],  # noqa: UP007
        Discriminator(
            _step_tag(steps),
            custom_error_type="step",
            custom_error_message="a step is a mapping with exactly one key: "
                                 + ", ".join(steps),
        ),
    ]


if TYPE_CHECKING:  # what the unions look like to a type checker
    SourceUnion: TypeAlias = SourceConfig
    DestinationUnion: TypeAlias = DestinationConfig
    TransformStep: TypeAlias = StepEntry
else:
    SourceUnion = _connector_union(SOURCES, "source")
    DestinationUnion = _connector_union(DESTINATIONS, "destination")
    TransformStep = _step_union()


class Channel(BaseModel):
    """One interface: where messages come from, which pass, how they change, where they go."""

    model_config = ConfigDict(extra="forbid", title="Conduit channel")

    name: str = Field(
        pattern=NAME_PATTERN,
        description="Unique among deployed channels; names its queues and store rows. "
                    "Lower case letters, digits, '-' and '_'.",
        examples=["adt-to-file", "lab_results"])
    description: str = Field(
        "", description="What this interface is for, for the people who run it.",
        examples=["ADT feed from registration to the archive and the downstream EHR"])
    source: SourceUnion = Field(
        description="Where messages come from; 'type' picks the connector.",
        examples=[{"type": "mllp", "host": "127.0.0.1", "port": 2575}])
    validation: Literal["none", "strict"] = Field(
        "none", alias="validate",
        description="strict: check each message against the HL7 v2 standard (hl7apy); a failure "
                    "is an ERROR answered AE. none: only parse (fast).",
        examples=["none", "strict"])
    timezone: str | None = Field(
        None,
        description="IANA time zone of the senders' clocks: HL7 v2 times sent without an "
                    "offset are read as local times there (daylight saving included), never as "
                    "UTC. Unset: the engine's default zone (setting 'timezone' or "
                    "CONDUIT_TIMEZONE), else the host's zone. 'conduit validate' shows the "
                    "zone in effect.",
        examples=["Europe/Berlin", "America/New_York"])
    data_type: Literal["hl7v2", "json", "xml", "fhir", "text"] | None = Field(
        None,
        description="What the messages are. Default: what the source carries (hl7v2 for MLLP and "
                    "files, fhir for FHIR, xml for SOAP, json for REST). Filters, 'when' and "
                    "the HL7 field steps (set, copy, delete) need hl7v2; other kinds go through "
                    "template steps, which see the parsed body as 'vars.body'.",
        examples=["hl7v2", "json"])
    filter: Condition | None = Field(
        None,
        description="Only messages that pass go on; the others are FILTERED (an outcome, not an "
                    "error).",
        examples=[{"all": [{"field": "MSH-9.1", "equals": "ADT"},
                           {"field": "MSH-9.2", "in": ["A01", "A04", "A08"]}]}])
    transform: list[TransformStep] = Field(
        default_factory=list,
        description="Steps run in order on each message that passed the filter.",
        examples=[[{"set": {"field": "PID-5.1", "value": "{{ msg['PID-5.1'] | upper }}"}},
                   {"delete": {"field": "ZPI"}}]])
    destinations: list[DestinationUnion] = Field(
        min_length=1,
        description="Where the transformed message goes, each with its own queue, retries and "
                    "optional 'when' filter.",
        examples=[[{"name": "archive", "type": "file",
                    "path": "out/{{ msg['MSH-10'] }}.hl7"}]])

    _path: str | None = PrivateAttr(None)

    @_field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return check_zone(value) if value is not None else None

    @_field_validator("destinations")
    @classmethod
    def _unique_names(cls, value: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for destination in value:
            if destination.name in seen:
                raise ValueError(f"destination name {destination.name!r} is used twice")
            seen.add(destination.name)
        return value

    @_model_validator(mode="after")
    def _data_type_rules(self) -> Channel:
        if self.data_type is None:
            self.data_type = getattr(type(self.source), "DATA_TYPE", "hl7v2")
        if self.data_type == "hl7v2":
            return self
        what = f"data_type {self.data_type}"
        if self.filter is not None:
            raise ValueError(f"filter reads HL7 v2 fields; it cannot be used with {what}")
        if self.validation == "strict":
            raise ValueError(f"validate: strict checks HL7 v2; it cannot be used with {what}")
        for destination in self.destinations:
            if destination.when is not None:
                raise ValueError(f"destination {destination.name}: 'when' reads HL7 v2 fields; "
                                 f"it cannot be used with {what}")
        for entry in self.transform:
            if entry.kind in HL7_FIELD_STEPS:
                raise ValueError(f"step {entry.kind!r} changes HL7 v2 fields; it cannot be used "
                                 f"with {what}")
        return self

    @property
    def path(self) -> str | None:
        """The file this channel was loaded from, if any."""
        return self._path
