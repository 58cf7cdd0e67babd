"""The state of one message's conversion: its resources so far, and the anchors segments hang on.

Segment maps are functions ``(ctx, seg)``; what they share goes through :class:`Conversion`:
the Patient and Encounter the message is about, the order or report an OBX belongs to, and the
resources already made (keyed by type/id, so a practitioner named twice is one resource).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import tzinfo
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from conduit.core.timezone import host_zone
from conduit.fhir import datatypes as dt
from conduit.fhir.ids import SHARED_KINDS, IdentifierSystems, shared_id, uuid5_text
from conduit.fhir.v2 import Field, Seg
from conduit.hl7.message import Message, Segment

__all__ = ["Conversion", "ConvertOptions", "Json"]

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ConvertOptions:
    """How a message becomes a Bundle (the step's options, minus validation)."""

    bundle_type: Literal["transaction", "batch"] = "transaction"
    conditional: bool = False
    """PUT patients, practitioners... by identifier (``Type?identifier=s|v``); see bundle."""
    timezone: str | None = None
    """Zone of the sender's clock for times sent without an offset (the step's or the channel's
    ``timezone``): an IANA name (``Europe/Berlin``, daylight saving applied per time) or an
    offset (``+01:00``)."""
    default_timezone: str | None = None
    """The zone when ``timezone`` is unset (the engine default); unset too: the host's zone.
    When MSH-7 carries an offset that the chosen zone does not have at that moment, MSH-7's
    offset is used instead (the sender said so). A time without an offset is never written as
    UTC unless one of these is UTC."""
    identifier_systems: Mapping[str, Mapping[str, str]] | None = None
    """The channel's ``identifier_systems`` (``authorities``/``facilities`` -> system URI);
    see :mod:`conduit.fhir.ids`."""


@lru_cache(maxsize=64)
def zone(spec: str | None) -> str | tzinfo | None:
    """``"+01:00"``/``"Z"`` stay text; an IANA name becomes a ZoneInfo (ValueError if unknown)."""
    if not spec:
        return None
    if spec == "Z" or (spec[:1] in "+-" and len(spec) == 6 and spec[3] == ":"):
        return spec
    try:
        return ZoneInfo(spec)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {spec!r}: use an IANA name or +HH:MM") from None


class Conversion:
    """One message being converted."""

    def __init__(self, message: Message, options: ConvertOptions | None = None,
                 segments: list[Segment] | None = None) -> None:
        self.message = message
        self.options = options or ConvertOptions()
        self.charset = message.encoding or "utf-8"
        self.resources: dict[str, Json] = {}
        # the message's segments in order (``message.segments()``, which convert reads anyway)
        self.segments = segments if segments is not None else message.segments()
        first = self.segments[0]
        self.msh = self.seg(first if first.name == "MSH" else message.segments("MSH")[0])
        self.tz = _sender_zone(zone(self.options.timezone) or zone(self.options.default_timezone)
                               or _host_zone(), self.msh[7])
        facility, application = self.msh.field(4), self.msh.field(3)
        self.systems = IdentifierSystems.of(self.options.identifier_systems,
                                         facility[1] or facility[2],
                                         application[1] or application[2])
        # MSH-10 (read by the Bundle and the Provenance) and MSH-9.1/9.2, raw as
        # Message.control_id, .message_code and .trigger_event read them
        raw, seps = self.msh.segment.fields, self.msh.segment.separators
        self.control_id = raw[10].split(seps.repetition, 1)[0] if len(raw) > 10 else ""
        msh9 = raw[9].split(seps.repetition, 1)[0].split(seps.component) if len(raw) > 9 else [""]
        self.message_code = msh9[0]
        self.trigger_event = msh9[1] if len(msh9) > 1 else ""
        self.message_key = (facility[1], application[1], self.control_id)
        self.header: str | None = None          # "MessageHeader/<id>", once made
        self.patient: str | None = None
        self.encounter: str | None = None
        self.pending_orc: Seg | None = None     # an ORC waiting for its OBR/RXA
        self.order: Json | None = None          # the ServiceRequest of the current ORC/OBR
        self.report: Json | None = None         # the DiagnosticReport of the current OBR (ORU)
        self.observation: Json | None = None    # the last Observation (NTE notes attach to it)
        self.immunization: Json | None = None   # the current RXA
        self.document: Json | None = None       # the current TXA (OBX become its content)
        self.document_text: list[str] = []
        self.document_kind = ""
        self.appointment: Json | None = None    # the current SCH
        self.insured_is_patient = False        # IN1-17 of the current IN1 is SEL
        self.counter: dict[str, int] = {}
        self._times: dict[str, str | None] = {}  # DTM text -> FHIR dateTime, this message
        # (kind, raw XCN/PL text) -> its Reference: a practitioner or location named by several
        # segments of a message is worked out once (see conduit.fhir.entities)
        self.entities: dict[tuple[str, str, bool], Json | None] = {}
        self._first: dict[str, Seg | None] = {}

    # -- reading ---------------------------------------------------------------------------------

    def seg(self, segment: Segment) -> Seg:
        return Seg(segment, self.charset)

    def first(self, name: str) -> Seg | None:
        """The first segment called ``name`` (EVN, SFT: near the top when present), read once."""
        known = self._first
        if name not in known:
            known[name] = None
            for s in self.segments:
                if s.name == name:
                    known[name] = self.seg(s)
                    break
        return known[name]

    @property
    def message_type(self) -> str:
        """``ADT^A01`` (as :attr:`Message.message_type`)."""
        code, trigger = self.message_code, self.trigger_event
        return f"{code}^{trigger}" if trigger else code

    def identifier(self, f: Field, type_code: str = "", *, authority: int = 4,
                   kind: int = 5) -> Json | None:
        """CX (or XCN with ``authority=9, kind=13``) -> Identifier, its system by the rule of
        :mod:`conduit.fhir.ids` (never missing)."""
        return dt.identifier(f, type_code, authority, kind, self.systems)  # positional: hot

    def entity_identifier(self, f: Field, type_code: str = "") -> Json | None:
        """EI -> Identifier, its system by the rule of :mod:`conduit.fhir.ids`."""
        return dt.entity_identifier(f, type_code, systems=self.systems)

    def sender_key(self, *parts: str) -> tuple[str, ...]:
        """Key parts for a resource known only by a name (a practitioner without an id, a
        location): qualified by the sender, so the same name at two senders is two resources."""
        return (self.systems.sender, *parts)

    def datetime(self, value: str) -> str | None:
        # a message repeats its times (MSH-7, EVN-2, OBR-7, OBX-14...): each is read once
        times = self._times
        if value in times:
            return times[value]
        out = times[value] = dt.datetime_(value, self.tz)
        return out

    def instant(self, value: str) -> str | None:
        if not self.tz:
            return dt.instant(value, self.tz)
        # with a zone, an instant is the dateTime when it has a time (read once, as above)
        out = self.datetime(value)
        return out if out is not None and "T" in out else None

    def period(self, start: str, end: str) -> Json | None:
        """As :func:`~conduit.fhir.datatypes.period`, through :meth:`datetime`."""
        if not start and not end:
            return None
        out: Json = {}
        if s := self.datetime(start):
            out["start"] = s
        if e := self.datetime(end):
            out["end"] = e
        return out or None

    # -- writing ---------------------------------------------------------------------------------

    def add(self, resource_type: str, key: tuple[str, ...], body: Json) -> Json:
        """Store a resource with the id derived from ``key``; the same key twice merges into
        the first (its elements win), so a practitioner named in PV1 and OBX is one resource."""
        return self._put(resource_type, key, body)[0]

    def add_ref(self, resource_type: str, key: tuple[str, ...], body: Json) -> Json:
        """:meth:`add`, answering a Reference to the resource (``ref(add(...))``)."""
        return {"reference": self._put(resource_type, key, body)[1]}

    def _put(self, resource_type: str, key: tuple[str, ...], body: Json) -> tuple[Json, str]:
        if resource_type in SHARED_KINDS:
            rid, reference = shared_id(resource_type, key)
        else:  # resource_id(resource_type, *key), one call fewer (every resource comes here)
            rid = uuid5_text("\x1f".join((resource_type, *key)) if key
                             else resource_type + "\x1f")
            reference = resource_type + "/" + rid
        existing = self.resources.get(reference)
        if existing is not None:
            for k, v in body.items():
                existing.setdefault(k, v)
            return existing, reference
        resource = self.resources[reference] = {"resourceType": resource_type, "id": rid, **body}
        return resource, reference

    def local_key(self, what: str) -> tuple[str, ...]:
        """A key for a resource without business identifiers: the message's own identity
        (sending facility, application, control id) plus its position, so a resend of the
        same message still lands on the same ids."""
        n = self.counter[what] = self.counter.get(what, 0) + 1
        return (*self.message_key, what, str(n))

    def distinct(self, resource_type: str, key: tuple[str, ...]) -> tuple[str, ...]:
        """``key`` the first time a segment (group) of this message uses it, numbered in message
        order after that: two tests ordered under one order number, three doses under ORCs
        repeating one number, two OBX repeating set id and code are separate resources, never
        one that keeps the first and silently drops the rest. The first keeps the id it always
        had, and a resend gives the same ids."""
        seen = "\x1f".join(("distinct", resource_type, *key))
        n = self.counter[seen] = self.counter.get(seen, 0) + 1
        return key if n == 1 else (*key, str(n))


def ref(resource: Json) -> Json:
    """A Reference dict to a stored resource."""
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


def _sender_zone(chosen: str | tzinfo, msh7: str) -> str | tzinfo:
    """The chosen zone, unless MSH-7's own offset contradicts it at MSH-7's time: then that
    offset (the sender's clock said so; a fixed offset, so it cannot follow daylight saving)."""
    declared = _message_zone(msh7)
    if declared is None:
        return chosen
    return chosen if dt.offset_at(msh7, chosen) == declared else declared


def _host_zone() -> tzinfo:
    return ZoneInfo(host_zone())


def _message_zone(msh7: str) -> str | None:
    """MSH-7's own offset: the sender's clock, used for its other times that lack one."""
    value = msh7.strip()
    if len(value) > 5 and value[-5] in "+-" and value[-4:].isdigit():
        return f"{value[-5:-2]}:{value[-2:]}"
    return None
