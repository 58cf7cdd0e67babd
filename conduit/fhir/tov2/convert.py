"""Choosing the message for a FHIR resource or Bundle and writing it (see the package doc)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from conduit.core.errors import MessageError
from conduit.fhir.tov2 import segments as seg
from conduit.fhir.tov2.datatypes import dtm
from conduit.fhir.tov2.fit import fit_segment
from conduit.fhir.tov2.resolve import Index

Json = dict[str, Any]

__all__ = ["ConversionError", "V2Options", "Version", "to_hl7v2"]

Version = Literal["2.3.1", "2.4", "2.5", "2.5.1", "2.6"]
"""Versions whose output hl7apy validates strictly (tested on the whole corpus). Not 2.3:
hl7apy has no ADT_A04/A08 structure for it and MSH-9.3 only came in 2.3.1; not 2.7+: their
required components (CX.5, ...) have no FHIR source to fill them from."""


@dataclass(frozen=True, slots=True)
class V2Options:
    """What the written message says about itself."""

    version: Version = "2.5.1"
    adt_event: Literal["A04", "A08"] = "A08"
    sending_application: str = "CONDUIT"
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())


class ConversionError(MessageError):
    """The FHIR content has nothing a v2 message can be made of (no Patient, no results)."""


def to_hl7v2(data: Json, options: V2Options | None = None) -> str:
    """One HL7 v2 message (CR-separated, trailing CR) for a FHIR resource or Bundle."""
    options = options or V2Options()
    if not isinstance(data, dict) or "resourceType" not in data:
        raise ConversionError("not a FHIR resource (no resourceType)")
    index = Index(data)
    reports, observations = index.all("DiagnosticReport"), index.all("Observation")
    if reports or observations:
        return _oru(index, reports, observations, options, data)
    patients = index.all("Patient")
    encounters = index.all("Encounter")
    if patients or encounters:
        return _adt(index, patients, encounters, options, data)
    raise ConversionError(
        f"nothing to write: a {data['resourceType']} holds no Patient, Encounter, Observation "
        "or DiagnosticReport")


def _header(data: Json, options: V2Options, kind: str) -> tuple[str, str]:
    stamp = data.get("timestamp") or (data.get("meta") or {}).get("lastUpdated")
    when = dtm(stamp) if stamp else datetime.now(UTC).strftime("%Y%m%d%H%M%S+0000")
    # the same content always gets the same control id: a resend is recognisable downstream
    digest = hashlib.sha1(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:20]
    if _version(options.version) < (2, 3, 1):  # MSH-9.3 (structure) came with v2.3.1
        kind = "^".join(kind.split("^")[:2])
    msh = seg.msh(sending=(options.sending_application, options.sending_facility),
                  receiving=(options.receiving_application, options.receiving_facility),
                  when=when, kind=kind, control_id=digest, version=options.version)
    return msh, when


def _adt(index: Index, patients: list[Json], encounters: list[Json], options: V2Options,
         data: Json) -> str:
    encounter = encounters[0] if encounters else None
    patient = patients[0] if patients else (
        index.resolve(encounter.get("subject")) if encounter else None)
    if patient is None:
        raise ConversionError("an ADT message needs the Patient: the Encounter's subject is "
                              "not in the Bundle")
    trigger = options.adt_event
    msh, when = _header(data, options, f"ADT^{trigger}^ADT_A01")
    lines = [msh, seg.evn(trigger, when), seg.pid(patient)]
    # PV1 is required in ADT_A01; a patient-only update says "not applicable" (N)
    lines.append(seg.pv1(encounter, index) if encounter else "PV1|1|N")
    return _finish(lines, options)


def _oru(index: Index, reports: list[Json], observations: list[Json], options: V2Options,
         data: Json) -> str:
    msh, _ = _header(data, options, "ORU^R01^ORU_R01")
    lines = [msh]
    first = reports[0] if reports else observations[0]
    patient: Json | None = (index.resolve(first.get("subject"))
                            or next(iter(index.all("Patient")), None))
    if patient is None:  # PID-3 from what the subject reference says
        subject = first.get("subject") or {}
        patient = ({"identifier": [subject["identifier"]]} if subject.get("identifier")
                   else {"id": (subject.get("reference") or "unknown").split("/")[-1]})
    lines.append(seg.pid(patient))
    encounter = index.resolve(first.get("encounter"))
    if encounter is not None:
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
            for i, note in enumerate(obs.get("note", ()), start=1):
                if note.get("text"):
                    lines.append(seg.nte(i, note["text"]))
    return _finish(lines, options)


def _finish(lines: list[str], options: V2Options) -> str:
    """MSH as written, every other segment fitted to the version (see :mod:`.fit`)."""
    fitted = [lines[0], *(fit_segment(options.version, line) for line in lines[1:])]
    return "\r".join(fitted) + "\r"
