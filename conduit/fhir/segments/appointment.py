"""SCH, AIS, AIL, AIP, AIG -> Appointment (IG: SIU message map, SCH[Appointment]).

SIU puts PID after SCH, so :mod:`conduit.fhir.convert` reads the patient first; the patient
participant is added here, the resources (AIP/AIL/AIG) as they come.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from conduit.fhir import datatypes as dt
from conduit.fhir import vocabulary
from conduit.fhir.context import Conversion, Json, ref
from conduit.fhir.entities import location, practitioner
from conduit.fhir.v2 import Field, Seg

# table 0278 filler status -> appointmentstatus
_STATUS = {"BOOKED": "booked", "CANCELLED": "cancelled", "COMPLETE": "fulfilled",
           "NOSHOW": "noshow", "PENDING": "pending", "WAITLIST": "waitlist",
           "DELETED": "entered-in-error", "STARTED": "arrived", "OVERBOOK": "booked",
           "BLOCKED": "booked", "DC": "cancelled"}
_BY_TRIGGER = {"S12": "booked", "S13": "booked", "S14": "booked", "S15": "cancelled",
               "S16": "cancelled", "S17": "entered-in-error", "S26": "noshow"}
_PROVENANCE_ROLE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
_PARTICIPANT = {"CONFIRMED": "accepted", "BOOKED": "accepted", "PENDING": "needs-action",
                "CANCELLED": "declined", "DELETED": "declined"}


def sch(ctx: Conversion, seg: Seg) -> None:
    # SCH-25 by the IG's FillerStatusCodes map, else by the trigger event
    status = (vocabulary.code("FillerStatusCodes[Appointment]", seg[25]) or
              _STATUS.get(seg[25].upper()) or
              _BY_TRIGGER.get(ctx.trigger_event.upper(), "booked"))
    body: Json = {"status": status}
    idents = [i for n, code in ((1, "PLAC"), (2, "FILL"))
              if (i := ctx.entity_identifier(seg.field(n), code))]
    if idents:
        body["identifier"] = idents
    # SCH-8 appointment type (table 0277); SCH-7 is the reason (0276) unless coded in 0277
    reason_field, type_field = seg.field(7), seg.field(8)
    if kind := _appointment_type(type_field) or (
            _appointment_type(reason_field) if _table(reason_field) == "0277" else None):
        body["appointmentType"] = kind
    if _table(reason_field) != "0277" and (reason := vocabulary.mapped(
            dt.codeable(reason_field, "0276"), "AppointmentReasonCodes", reason_field[1])):
        body["reasonCode"] = [reason]
    orders = [{"type": "ServiceRequest", "identifier": i}
              for n, code in ((26, "PLAC"), (27, "FILL"))
              if (i := ctx.entity_identifier(seg.field(n), code))]
    if orders:  # SCH-26/27 placer/filler order numbers: logical references to the order
        body["basedOn"] = orders
    timing = seg.field(11)  # TQ: start is component 4, end component 5 (v2.5 and before)
    if start := ctx.instant(timing[4]):
        body["start"] = start
    if end := ctx.instant(timing[5]):
        body["end"] = end
    minutes = _minutes(seg[9], seg.field(10)[1])
    if minutes:
        body["minutesDuration"] = minutes
    participants: list[Json] = []
    if ctx.patient:
        participants.append({"actor": {"reference": ctx.patient}, "status": "accepted"})
    for n, kind in ((12, {"text": "placer contact"}), (16, {"text": "filler contact"}),
                    (20, {"coding": [dt.coding("enterer", "Enterer", _PROVENANCE_ROLE)]})):
        if who := practitioner(ctx, seg.field(n)):
            participants.append({"type": [kind], "actor": who, "status": "accepted"})
    body["participant"] = participants
    key = (("appointment", dt.identifier_key(idents[-1])) if idents
           else ctx.local_key("Appointment"))
    ctx.appointment = ctx.add("Appointment", key, body)


def _minutes(value: str, unit: str) -> int | None:
    if not value.isdigit() or int(value) <= 0:
        return None
    n = int(value)
    unit = unit.upper()
    if unit in ("H", "HR", "HOUR", "HOURS"):
        return n * 60
    if unit in ("S", "SEC", "SECONDS"):
        return max(1, n // 60)
    return n


def ais(ctx: Conversion, seg: Seg) -> None:
    """AIS-3 service -> serviceType and a participant of that type, its time (AIS-4, or the
    AIS-5 offset, and AIS-7 duration) the participant's period; AIS-10 -> status when SCH-25
    gave none (IG AIS[Appointment])."""
    appt = ctx.appointment
    if appt is None:
        return
    service = dt.codeable(seg.field(3))
    if service:
        appt.setdefault("serviceType", []).append(service)
    _times(ctx, appt, seg[4], seg[7], seg.field(8)[1])
    if service and (period := _period(ctx, appt, seg, 4, 5, 6, 7, 8)):
        appt["participant"].append({"type": [service], "status": "accepted", "period": period})
    status = vocabulary.code("FillerStatusCodes[Appointment]", seg[10])
    if status and not _sch_status(ctx, seg):
        appt["status"] = status


def _sch_status(ctx: Conversion, seg: Seg) -> str:
    """SCH-25 of the SCH this segment belongs to (the last one before it)."""
    found = ""
    for segment in ctx.message.segments():
        if segment is seg.segment:
            break
        if segment.name == "SCH":
            found = ctx.seg(segment)[25]
    return found


def _table(f: Field) -> str:
    """The HL7 table a CWE names in its coding system (CWE.3 ``HL70277`` -> ``0277``)."""
    name = f[3].upper().replace("HL7", "").lstrip("-_ ")
    return name if len(name) == 4 and name.isdigit() else ""


def _appointment_type(f: Field) -> Json | None:
    return vocabulary.mapped(dt.codeable(f, "0277"), "AppointmentTypeCodes", f[1])


def _period(ctx: Conversion, appt: Json, seg: Seg, start_n: int, offset_n: int,
            offset_unit_n: int, duration_n: int, unit_n: int) -> Json | None:
    """A resource's time in an SIU: its start (or the appointment's start plus the start
    offset) and its duration -> a Period."""
    begin = ctx.instant(seg[start_n])
    if begin is None and seg[offset_n].lstrip("-").isdigit() and appt.get("start"):
        shift = _minutes_signed(seg[offset_n], seg.field(offset_unit_n)[1])
        begin = (datetime.fromisoformat(appt["start"]) + timedelta(minutes=shift)).isoformat()
    if begin is None:
        return None
    out: Json = {"start": begin}
    if minutes := _minutes(seg[duration_n], seg.field(unit_n)[1]):
        out["end"] = (datetime.fromisoformat(begin) + timedelta(minutes=minutes)).isoformat()
    return out


def _minutes_signed(value: str, unit: str) -> int:
    sign = -1 if value.startswith("-") else 1
    return sign * (_minutes(value.lstrip("-"), unit) or 0)


def _times(ctx: Conversion, appt: Json, start_text: str, duration: str, unit: str) -> None:
    start = ctx.instant(start_text)
    if start and "start" not in appt:
        appt["start"] = start
        minutes = _minutes(duration, unit)
        if minutes and "end" not in appt:
            appt["end"] = (datetime.fromisoformat(start) + timedelta(minutes=minutes)) \
                .isoformat()
            appt.setdefault("minutesDuration", minutes)


def _participant(ctx: Conversion, actor: Json | None, seg: Seg, status_field: int,
                 kind: Json | None = None) -> None:
    """A resource of the appointment (AIP/AIL): its status, role and time (-6/-7/-8 start or
    offset, -9/-10 duration)."""
    appt = ctx.appointment
    if appt is None or actor is None:
        return
    status = _PARTICIPANT.get(seg[status_field].upper(), "accepted")
    if not any(p.get("actor") == actor for p in appt["participant"]):
        entry: Json = {"actor": actor, "status": status}
        if kind:
            entry["type"] = [kind]
        if period := _period(ctx, appt, seg, 6, 7, 8, 9, 10):
            entry["period"] = period
        appt["participant"].append(entry)


def aip(ctx: Conversion, seg: Seg) -> None:
    """AIP-3 personnel (XCN) -> a Practitioner participant."""
    if ctx.appointment is not None:
        _times(ctx, ctx.appointment, seg[6], seg[9], seg.field(10)[1])
    for f in seg.reps(3):  # AIP-4 resource role
        _participant(ctx, practitioner(ctx, f), seg, 12, dt.codeable(seg.field(4)))


def ail(ctx: Conversion, seg: Seg) -> None:
    """AIL-3 location (PL) -> a Location participant."""
    if ctx.appointment is not None:
        _times(ctx, ctx.appointment, seg[6], seg[9], seg.field(10)[1])
    _participant(ctx, location(ctx, seg.field(3)), seg, 12)


def aig(ctx: Conversion, seg: Seg) -> None:
    """AIG-3 general resource (CWE) -> a participant known by its type only."""
    appt = ctx.appointment
    if appt is None:
        return
    if kind := dt.codeable(seg.field(3)):
        appt["participant"].append({"type": [kind], "status": "accepted"})


def finish(ctx: Conversion) -> None:
    """An appointment needs a participant; one with nobody named gets the patient or drops."""
    appt = ctx.appointment
    if appt is not None and not appt["participant"]:
        del ctx.resources[ref(appt)["reference"]]
    ctx.appointment = None
