"""Choosing the messages for a FHIR resource or Bundle and writing them (see the package doc)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import orjson

from conduit.fhir.tov2 import segments as seg
from conduit.fhir.tov2.datatypes import dtm
from conduit.fhir.tov2.fit import fit_segment
from conduit.fhir.tov2.patients import ConversionError, PatientData, by_patient
from conduit.fhir.tov2.resolve import Index

Json = dict[str, Any]

__all__ = ["ConversionError", "MessageKind", "PatientsMode", "V2Options", "Version", "messages",
           "to_hl7v2"]

Version = Literal["2.3.1", "2.4", "2.5", "2.5.1", "2.6"]
"""Versions whose output hl7apy validates strictly (tested on the whole corpus). Not 2.3:
hl7apy has no ADT_A04/A08 structure for it and MSH-9.3 only came in 2.3.1; not 2.7+: their
required components (CX.5, ...) have no FHIR source to fill them from."""

MessageKind = Literal["auto", "ADT", "ORU"]
PatientsMode = Literal["refuse", "split"]

_EVENTS = "http://terminology.hl7.org/CodeSystem/v2-0003"


@dataclass(frozen=True, slots=True)
class V2Options:
    """What the written message says about itself, which message it is, and what to do with a
    Bundle of several patients."""

    version: Version = "2.5.1"
    adt_event: Literal["A04", "A08"] = "A08"
    sending_application: str = "CONDUIT"
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    message_type: MessageKind = "auto"
    patients: PatientsMode = "refuse"
    codec: str = "utf-8"
    """The codec the text will be written in (MSH-18 names it when the text is not ASCII): in
    an HL7 v2 channel the engine writes a step's body in the received message's codec."""


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())


def to_hl7v2(data: Json, options: V2Options | None = None) -> str:
    """The HL7 v2 text for a FHIR resource or Bundle (CR-separated, trailing CR): one message,
    or, for a Bundle of several patients split by ``patients="split"``, a batch (BHS ... BTS)
    of one message per patient."""
    options = options or V2Options()
    written = messages(data, options)
    if len(written) == 1:
        return written[0]
    return _batch(written, data, options)


def messages(data: Json, options: V2Options | None = None) -> list[str]:
    """One message per patient of ``data``; ConversionError when it holds several patients
    and ``options.patients`` is ``refuse`` (see :mod:`.patients` for what else is refused)."""
    options = options or V2Options()
    if not isinstance(data, dict) or "resourceType" not in data:
        raise ConversionError("not a FHIR resource (no resourceType)")
    index = Index(data)
    groups = by_patient(index)
    if not groups:
        raise ConversionError(
            f"nothing to write: a {data['resourceType']} holds no Patient, Encounter, "
            "Observation or DiagnosticReport")
    if len(groups) > 1 and options.patients == "refuse":
        entries = ", ".join(index.name(g.patient) for g in groups)
        raise ConversionError(
            f"the Bundle holds {len(groups)} patients ({entries}): one message carries one "
            "patient; the step option `patients: split` writes one message per patient")
    asked = _asked(index, options)
    digest, when = _digest(data), _when(data)
    out = []
    for n, group in enumerate(groups):
        # the same content always gets the same control id: a resend is recognisable
        control_id = digest if len(groups) == 1 else _digest([digest, n])
        out.append(_message(index, group, asked, options, when, control_id))
    return out


def _asked(index: Index, options: V2Options) -> MessageKind:
    """The message the channel asks for; ``auto`` follows a MessageHeader's ADT event, else
    (per patient) the content."""
    if options.message_type != "auto":
        return options.message_type
    for header in index.all("MessageHeader"):
        event = header.get("eventCoding") or {}
        if event.get("system") == _EVENTS and str(event.get("code", "")).startswith("A"):
            return "ADT"
    return "auto"


def _message(index: Index, group: PatientData, asked: MessageKind, options: V2Options,
             when: str, control_id: str) -> str:
    kind = asked
    if kind == "auto":
        kind = "ORU" if group.reports or group.observations else "ADT"
    if kind == "ORU":
        return _oru(index, group, options, when, control_id)
    return _adt(index, group, options, when, control_id)


def _digest(value: object) -> str:
    text = orjson.dumps(value, default=_decimal, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha1(text).hexdigest()[:20]


def _decimal(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value, "f"))
    raise TypeError(type(value).__name__)


def _when(data: Json) -> str:
    stamp = data.get("timestamp") or (data.get("meta") or {}).get("lastUpdated")
    return dtm(stamp) if stamp else datetime.now(UTC).strftime("%Y%m%d%H%M%S+0000")


def _adt(index: Index, group: PatientData, options: V2Options, when: str,
         control_id: str) -> str:
    if group.reports:
        raise ConversionError(
            f"{index.name(group.reports[0])} cannot be written in an ADT message (ADT has no "
            "OBR): use `message_type: ORU`")
    if group.stand_in:  # PID-5 would say '""' (delete the name) for lack of the Patient
        raise ConversionError("an ADT message needs the Patient resource, not only a subject "
                              "reference: send a Bundle with the Patient")
    encounter = group.encounters[0] if group.encounters else None
    for obs in group.observations:
        if obs.get("note"):
            raise ConversionError(f"{index.name(obs)} has notes, which an ADT message cannot "
                                  "carry (no NTE after its OBX): use `message_type: ORU`")
    trigger = options.adt_event
    lines = [seg.evn(trigger, when), seg.pid(group.patient, options.version)]
    # PV1 is required in ADT_A01; a patient-only update says "not applicable" (N)
    lines.append(seg.pv1(encounter, index) if encounter else "PV1|1|N")
    lines.extend(_results(index, group.observations, options, notes=False))
    return _finish(lines, options, f"ADT^{trigger}^ADT_A01", when, control_id)


def _oru(index: Index, group: PatientData, options: V2Options, when: str,
         control_id: str) -> str:
    reports, observations = group.reports, group.observations
    if not reports and not observations:
        raise ConversionError(f"no Observation or DiagnosticReport for {index.name(group.patient)}"
                              ": an ORU^R01 needs results")
    lines = [seg.pid(group.patient, options.version)]
    first = reports[0] if reports else observations[0]
    encounter = index.resolve(first.get("encounter"))
    if encounter is not None and encounter.get("resourceType") == "Encounter":
        lines.append(seg.pv1(encounter, index))
    used: set[int] = set()
    groups: list[tuple[Json | None, Json | None, list[Json]]] = []
    for dr in reports:
        found = [o for r in dr.get("result", ()) if (o := index.resolve(r)) is not None]
        used.update(id(o) for o in found)
        groups.append((dr, dr.get("code"), found))
    loose = [o for o in observations if id(o) not in used]
    if loose:  # observations without a report: one OBR named after the first of them,
        # with its time (OBR-7/8), issue time (OBR-22), status (OBR-25) and identifier (OBR-3)
        head = loose[0]
        as_report = {k: head[k] for k in ("effectiveDateTime", "effectivePeriod", "issued",
                                           "status", "identifier") if head.get(k)}
        groups.append((as_report, head.get("code"), loose))
    for n, (report, code, results) in enumerate(groups, start=1):
        lines.append(seg.obr(n, report, code, index))
        if not results and _version(options.version) < (2, 5) and report is not None:
            # before 2.5 an order group needs an OBX: the report's own code and conclusion
            stand_in: Json = {"code": report.get("code"), "status": report.get("status")}
            if report.get("conclusion"):
                stand_in["valueString"] = report["conclusion"]
            results = [stand_in]
        lines.extend(_results(index, results, options, notes=True))
    return _finish(lines, options, "ORU^R01^ORU_R01", when, control_id)


def _results(index: Index, results: list[Json], options: V2Options, *,
             notes: bool) -> list[str]:
    """OBX segments (one per value and per component), each followed by its NTEs."""
    lines: list[str] = []
    set_id = 0
    for obs in results:
        has_value = any(k.startswith("value") for k in obs)
        if has_value or not obs.get("component"):
            set_id += 1
            lines.append(seg.obx(set_id, obs, index, version=options.version))
        for c, component in enumerate(obs.get("component", ()), start=1):
            # a component is sent as an OBX of its own, sub-id = its position
            part = {k: v for k, v in obs.items() if not k.startswith("value")
                    and k not in ("interpretation", "referenceRange")}
            part.update(component)
            set_id += 1
            lines.append(seg.obx(set_id, part, index, version=options.version,
                                 sub_id=str(c), code=component.get("code")))
        if notes:
            for i, note in enumerate(obs.get("note", ()), start=1):
                if note.get("text"):
                    lines.append(seg.nte(i, note["text"]))
    return lines


def _finish(lines: list[str], options: V2Options, kind: str, when: str,
            control_id: str) -> str:
    """The MSH, then every segment fitted to the version (see :mod:`.fit`); MSH-18 names the
    character set when the text is not ASCII."""
    if _version(options.version) < (2, 3, 1):  # MSH-9.3 (structure) came with v2.3.1
        kind = "^".join(kind.split("^")[:2])
    body = [fit_segment(options.version, line) for line in lines]
    header = seg.msh(sending=(options.sending_application, options.sending_facility),
                     receiving=(options.receiving_application, options.receiving_facility),
                     when=when, kind=kind, control_id=control_id, version=options.version)
    text = "\r".join([header, *body]) + "\r"
    if not text.isascii():
        text = seg.with_charset(header, options.version, options.codec) + text[len(header):]
    return text


def _batch(written: list[str], data: Json, options: V2Options) -> str:
    """The messages in one HL7 batch (v2 chapter 2): BHS, the messages, BTS with the count."""
    header = seg.bhs(sending=(options.sending_application, options.sending_facility),
                     receiving=(options.receiving_application, options.receiving_facility),
                     when=_when(data), control_id=_digest(data))
    return header + "\r" + "".join(written) + f"BTS|{len(written)}\r"
