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

from conduit.hl7.message import Message
from conduit.hl7.path import PathText

#: Read from every HL7 v2 message: (search field name, path read). Accession and order numbers
#: are the entity identifier (first component); ``OBR-3`` in a search also finds ``OBR-3.1``.
STANDARD = (("PID-3.4", "PID-3.4"), ("PID-5.1", "PID-5.1"), ("PID-5.2", "PID-5.2"),
            ("ORC-2.1", "ORC-2.1"), ("ORC-3.1", "ORC-3.1"), ("OBR-2.1", "OBR-2.1"),
            ("OBR-3.1", "OBR-3.1"))


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
    empty values left out."""
    found = [(name, message.get(path)) for name, path in STANDARD]
    found.append(("MRN", _mrn(message)))
    found.extend((path, message.get(path)) for path in named)
    return [(name, value) for name, value in found if value]


def _mrn(message: Message) -> str:
    """The identifier of PID-3 typed MR (CX-5), if the sender typed one."""
    for repetition in message.repetitions("PID-3"):
        parts = repetition.split(message.separators.component) if repetition else []
        if len(parts) > 4 and parts[4] == "MR":
            return parts[0]
    return ""
