"""What a message is searched by: its search fields, and whether its channel is full-text indexed.

Operators look messages up by patient identifier, name, MRN, control id, accession or order
number, type, status and time far more than by arbitrary words (IRIS's search tables, Mirth's
metadata columns). So every HL7 v2 message gets a fixed, cheap set of **search fields**
(:data:`STANDARD`, plus the MRN: the PID-3 identifier typed ``MR``) and the fields its channel
names (``search: {fields: [...]}``); they are written with the message in the same commit
(``store.search_fields``). Control id, type, patient id, status and time are columns of the
message itself. **Full text** is opt-in per channel (``search: {full_text: true}``): a
background job indexes those channels' messages (``store.fulltext``), never the intake path.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from conduit.hl7.message import Message, Segment
from conduit.hl7.path import FieldPath, parse_path
from conduit.hl7.pathtext import PathText

#: Read from every HL7 v2 message: (search field name, path read). Accession and order numbers
#: are the entity identifier (first component); ``OBR-3`` in a search also finds ``OBR-3.1``.
STANDARD = (("PID-3.4", "PID-3.4"), ("PID-5.1", "PID-5.1"), ("PID-5.2", "PID-5.2"),
            ("ORC-2.1", "ORC-2.1"), ("ORC-3.1", "ORC-3.1"), ("OBR-2.1", "OBR-2.1"),
            ("OBR-3.1", "OBR-3.1"))
_STANDARD_PATHS = tuple((name, parse_path(path)) for name, path in STANDARD)


class SearchSettings(BaseModel):
    """What the operators search this channel's messages by."""

    model_config = ConfigDict(extra="forbid")

    fields: list[PathText] = Field(
        default_factory=list,
        description="HL7 v2 fields stored with each message as search fields, besides the "
                    "standard ones (PID-3.4, MRN, PID-5.1, PID-5.2, ORC-2.1, ORC-3.1, OBR-2.1, "
                    "OBR-3.1): `conduit messages --field OBR-3=ACC123`. The value is the "
                    "field's first repetition as sent (a path without a component: every "
                    "component), matched exactly.",
        examples=[["PV1-19", "OBR-4.1"]])
    full_text: bool = Field(
        default=False,
        description="Index the whole message text for word search (a background job, a few "
                    "seconds behind; its lag is the metric conduit_fulltext_lag_messages). "
                    "Off by default: it costs the indexer CPU and store space per message.")


def search_fields(message: Message, named: list[str]) -> list[tuple[str, str]]:
    """The search fields of ``message``: the standard set, the MRN, then the ``named`` ones;
    empty values left out.

    Runs for every message received: each segment is looked up once (``Message.get`` per path
    scanned the segments again for each, and all of them for each path of a segment the
    message lacks, ORC and OBR in an ADT) and the standard paths are parsed once."""
    first: dict[str, Segment | None] = {}
    found = [(name, _value(message, path, first)) for name, path in _STANDARD_PATHS]
    found.append(("MRN", _mrn(first["PID"] if "PID" in first else _first(message, "PID", first))))
    found.extend((path, message.get(path)) for path in named)
    return [(name, value) for name, value in found if value]


def _first(message: Message, name: str, first: dict[str, Segment | None]) -> Segment | None:
    """The first segment called ``name`` (None if there is none), remembered in ``first``."""
    segment = first[name] = next(iter(message.segments(name)), None)
    return segment


def _value(message: Message, path: FieldPath, first: dict[str, Segment | None]) -> str:
    """``message.get(path)`` for a path of a segment's first occurrence."""
    name = path.segment
    segment = first[name] if name in first else _first(message, name, first)
    return (segment.value(path) or "") if segment is not None else ""


def _mrn(pid: Segment | None) -> str:
    """The identifier of PID-3 typed MR (CX-5), if the sender typed one."""
    if pid is None:
        return ""
    component = pid.separators.component
    for repetition in _repetitions(pid):
        parts = repetition.split(component) if repetition else []
        if len(parts) > 4 and parts[4] == "MR":
            return parts[0]
    return ""


def _repetitions(pid: Segment) -> list[str]:
    """PID-3's repetitions as sent."""
    fields = pid.fields
    return fields[3].split(pid.separators.repetition) if len(fields) > 3 else []
