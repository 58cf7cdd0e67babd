"""The channel model: what one YAML channel file says, validated and typed.

:class:`Channel` is the shape every part of the engine reads. The model a file is validated
against is built from a component registry by :func:`channel_model` (once per registry): its
``source:`` and ``destinations:`` unions come from the registered connectors and its
``transform:`` union from the registered steps, so a new connector or step kind needs no change
here. Every union is discriminated by a callable (on ``type``, or on a step's single key) whose
tags start with ``@``; the loader drops those tags from error locations, which keeps errors
readable (``destinations[0].pth``, never the union's internals).

The data type rules come from the registry too: a source declares what it carries (the default
``data_type``), a step what it needs and produces, and a step that needs what the channel does
not carry at that point is refused with its location (``conduit validate``: file and line).

The JSON Schema of the model (:mod:`conduit.engine.schema`, ``conduit schema``) gives editors
completion and help.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, PrivateAttr, Tag, create_model
from pydantic import field_validator as _field_validator
from pydantic import model_validator as _model_validator
from pydantic_core import PydanticCustomError

from conduit.connectors.base import DestinationConfig, SourceConfig
from conduit.core.registry import DestinationSpec, Registry, SourceSpec, StepSpec
from conduit.core.timezone import check_zone
from conduit.engine.backpressure import BackpressureSettings
from conduit.engine.components import default_registry
from conduit.engine.search import SearchSettings
from conduit.transforms.filter import Condition, leaves
from conduit.transforms.registry import StepOptions

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"

#: A problem with its place in the file: (key path as in the YAML, message).
Located = tuple[tuple[str | int, ...], str]


def _type_tag(specs: Mapping[str, SourceSpec | DestinationSpec]) -> Any:
    def tag(value: Any) -> str | None:
        kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
        return f"@{kind}" if isinstance(kind, str) and kind in specs else None

    return tag


def _connector_union(specs: Mapping[str, SourceSpec | DestinationSpec], what: str) -> Any:
    """``Annotated[A | B | ..., Discriminator]`` over every registered config, keyed by ``type``."""
    kinds = sorted(specs)
    members = tuple(Annotated[specs[k].config, Tag(f"@{k}")] for k in kinds)
    return Annotated[
        Union[members],  # noqa: UP007  (a runtime tuple of members)
        Discriminator(
            _type_tag(specs),
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


def _entry_model(spec: StepSpec) -> type[StepEntry]:
    name = "".join(part.capitalize() for part in spec.kind.replace("_", "-").split("-")) + "Step"
    model = create_model(
        name,
        __base__=StepEntry,
        __doc__=spec.description,
        opts=(spec.options, Field(alias=spec.kind, description=spec.description)),
    )
    model.model_config["title"] = name
    model.KIND = spec.kind
    return model


def _step_tag(steps: Mapping[str, StepSpec]) -> Any:
    def tag(value: Any) -> str | None:
        if isinstance(value, StepEntry):
            return f"@{value.kind}"
        if isinstance(value, dict) and len(value) == 1:
            (key,) = value
            return f"@{key}" if key in steps else None
        return None

    return tag


def _step_union(steps: Mapping[str, StepSpec]) -> Any:
    kinds = sorted(steps)
    members = tuple(Annotated[_entry_model(steps[k]), Tag(f"@{k}")] for k in kinds)
    return Annotated[
        Union[members],  # noqa: UP007
        Discriminator(
            _step_tag(steps),
            custom_error_type="step",
            custom_error_message="a step is a mapping with exactly one key: " + ", ".join(kinds),
        ),
    ]


class Channel(BaseModel):
    """One interface: where messages come from, which pass, how they change, where they go.

    Validate files with :func:`channel_model` (or the loader), which fills in the registered
    kinds; this base class is the typed shape the engine reads.
    """

    model_config = ConfigDict(extra="forbid", title="Conduit channel")
    built_from: ClassVar[Registry | None] = None
    """The registry this model was built from (None on the unbuilt base class)."""

    name: str = Field(
        pattern=NAME_PATTERN,
        description="Unique among deployed channels; names its queues and store rows. "
                    "Lower case letters, digits, '-' and '_'.",
        examples=["adt-to-file", "lab_results"])
    description: str = Field(
        "", description="What this interface is for, for the people who run it.",
        examples=["ADT feed from registration to the archive and the downstream EHR"])
    enabled: bool = Field(
        True, examples=[False],
        description="false: the channel is validated and tested (conduit validate, conduit test) "
                    "but not deployed by conduit run; say why in 'description'. Its source port "
                    "may then be one an enabled channel uses.")
    source: SourceConfig = Field(
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
                    "files, fhir for FHIR, xml for SOAP, json for REST). Filters and 'when' "
                    "read it with 'field' (hl7v2), 'json' (json, fhir) or 'xpath' (xml); the "
                    "steps that edit HL7 v2 fields (set, copy, delete...) need hl7v2; other "
                    "kinds go through template steps, which see the parsed body as 'vars.body'.",
        examples=["hl7v2", "json"])
    filter: Condition | None = Field(
        None,
        description="Only messages that pass go on; the others are FILTERED (an outcome, not an "
                    "error). Tests read HL7 v2 fields ('field'), JSON/FHIR values ('json', "
                    "JMESPath) or XML values ('xpath', XPath 1.0), as the data_type says.",
        examples=[{"all": [{"field": "MSH-9.1", "equals": "ADT"},
                           {"field": "MSH-9.2", "in": ["A01", "A04", "A08"]}]}])
    transform: list[StepEntry] = Field(
        default_factory=list,
        description="Steps run in order on each message that passed the filter.",
        examples=[[{"set": {"field": "PID-5.1", "value": "{{ msg['PID-5.1'] | upper }}"}},
                   {"delete": {"field": "ZPI"}}]])
    destinations: list[DestinationConfig] = Field(
        min_length=1,
        description="Where the transformed message goes, each with its own queue, retries and "
                    "optional 'when' filter.",
        examples=[[{"name": "archive", "type": "file",
                    "path": "out/{{ msg['MSH-10'] }}.hl7"}]])
    search: SearchSettings = Field(
        default_factory=lambda: SearchSettings(),
        description="What operators search this channel's messages by: search fields stored "
                    "with each message (patient identifier, name, MRN, accession and order "
                    "numbers, plus 'fields'), and opt-in full text ('full_text: true').",
        examples=[{"fields": ["PV1-19", "OBR-4.1"], "full_text": False}])
    backpressure: BackpressureSettings = Field(
        default_factory=lambda: BackpressureSettings.model_validate({}),
        description="Intake slows while a destination falls behind (its queue longer than "
                    "'queued' while it is sending): the senders wait for their ACKs instead of "
                    "the backlog growing in the engine's queues.",
        examples=[{"queued": 200, "max_wait": "1s"}, {"queued": None}])

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
        registry = self.registry
        if self.data_type is None:
            self.data_type = registry.sources[self.source.type].carries
        problems = self.data_type_problems(registry)
        if problems:
            raise PydanticCustomError("data_type", "{message}", {
                "message": "; ".join(message for _, message in problems), "problems": problems})
        return self

    def data_type_problems(self, registry: Registry) -> list[Located]:
        """What reads a data type the channel does not carry there, each with its key path.

        Each leaf test of ``filter`` and ``when`` reads one kind of message (``field``: HL7 v2,
        ``json``: JSON or FHIR, ``xpath``: XML): the channel's. A step's ``needs`` are checked
        against the data type at its place: the channel's, then what the last producing step
        made; ``hl7v2`` means the parsed message, which only an HL7 v2 channel has, and only
        until a step replaces the body (an edit after that would not reach the destinations).
        """
        problems: list[Located] = []
        channel_type = self.data_type or "hl7v2"
        what = f"data_type {channel_type}"
        conditions: list[tuple[tuple[str | int, ...], str, Any]] = []
        if self.filter is not None:
            conditions.append((("filter",), "", self.filter))
        for i, destination in enumerate(self.destinations):
            if destination.when is not None:
                conditions.append((("destinations", i, "when"),
                                   f"destination {destination.name}: ", destination.when))
        for where, prefix, condition in conditions:
            for loc, reads in leaves(condition):
                if channel_type not in _CONDITION_READS[reads]:
                    problems.append(((*where, *loc), prefix + _misread(loc[-1], channel_type)))
        if channel_type != "hl7v2" and self.validation == "strict":
            problems.append((("validate",), f"validate: strict checks HL7 v2; it cannot be "
                                            f"used with {what}"))
        if channel_type != "hl7v2" and self.search.fields:
            problems.append((("search", "fields"), f"search fields are HL7 v2 paths; they "
                                                   f"cannot be used with {what}"))
        current, parsed, since = channel_type, channel_type == "hl7v2", "the channel's data_type"
        for i, entry in enumerate(self.transform):
            spec = registry.steps[entry.kind]
            fits = (not spec.needs or (parsed and "hl7v2" in spec.needs)
                    or (current != "hl7v2" and current in spec.needs))
            if not fits:
                here = (f"{current} ({since})" if current != "hl7v2" or parsed
                        else f"HL7 v2 text ({since}), not a parsed message")
                problems.append((("transform", i, entry.kind), (
                    f"step {entry.kind!r} needs {' or '.join(spec.needs)}; here the message "
                    f"is {here}")))
            if spec.produces is not None:
                current, parsed = spec.produces, False
                since = f"made by step {i + 1}, {entry.kind}"
        return problems

    @property
    def registry(self) -> Registry:
        """The components this channel was validated with: they build its source, steps and
        destinations."""
        registry = type(self).built_from
        if registry is None:
            raise TypeError("validate channels with channel_model(registry), not the base class")
        return registry

    @property
    def path(self) -> str | None:
        """The file this channel was loaded from, if any."""
        return self._path


_CONDITION_READS: dict[str, tuple[str, ...]] = {
    "hl7v2": ("hl7v2",), "json": ("json", "fhir"), "xml": ("xml",)}
_CONDITION_KEYS = {"hl7v2": ("field", "an HL7 v2 path"), "json": ("json", "JMESPath"),
                   "fhir": ("json", "JMESPath"), "xml": ("xpath", "XPath")}
_READS_WHAT = {"field": "an HL7 v2 field", "json": "JSON", "xpath": "XML"}


def _misread(key: str | int, channel_type: str) -> str:
    """Why a condition's ``key`` (field, json, xpath) cannot read this channel's messages, and
    which key would."""
    said = f"{key!r} reads {_READS_WHAT.get(str(key), key)}; this channel's data_type is " \
           f"{channel_type}"
    fits = _CONDITION_KEYS.get(channel_type)
    if fits is None:
        return f"{said}, which no condition reads"
    return f"{said}: read it with '{fits[0]}:' ({fits[1]})"


_MODELS: weakref.WeakKeyDictionary[Registry, tuple[int, type[Channel]]] = (
    weakref.WeakKeyDictionary())


def channel_model(registry: Registry | None = None) -> type[Channel]:
    """The channel model for ``registry`` (default: every built-in component), built once per
    registry and rebuilt only if the registry changed since."""
    registry = default_registry() if registry is None else registry
    cached = _MODELS.get(registry)
    if cached is not None and cached[0] == registry.version:
        return cached[1]
    base = Channel.model_fields
    unions: dict[str, Any] = {
        "source": (_connector_union(registry.sources, "source"), base["source"]),
        "transform": (list[_step_union(registry.steps)], base["transform"]),  # type: ignore[misc]
        "destinations": (list[_connector_union(registry.destinations, "destination")],  # type: ignore[misc]
                         base["destinations"]),
    }
    model = create_model("Channel", __base__=Channel, __module__=__name__,
                         __doc__=(Channel.__doc__ or "").split("\n\n")[0], **unions)
    model.built_from = registry
    _MODELS[registry] = (registry.version, model)
    return model
