"""SCH, AIS, AIL, AIP, AIG -> Appointment (IG: SIU message map, SCH[Appointment]).

SIU puts PID after SCH, so :mod:`conduit.fhir.convert` reads the patient first; the patient
participant is added here, the resources (AIP/AIL/AIG) as they come.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from conduit.fhir import datatypes as dt
from conduit.fhir.context import Conversion, Json, ref
from conduit.fhir.entities import location, practitioner
from conduit.fhir.v2 import Seg

# table 0278 filler status -> appointmentstatus
_STATUS = {"BOOKED": "booked", "CANCELLED": "cancelled", "COMPLETE": "fulfilled",
           "NOSHOW": "noshow", "PENDING": "pending", "WAITLIST": "waitlist",
           "DELETED": "entered-in-error", "STARTED": "arrived", "OVERBOOK": "booked",
           "BLOCKED": "booked", "DC": "cancelled"}
_BY_TRIGGER = {"S12": "booked", "S13": "booked", "S14": "booked", "S15": "cancelled",
               "S16": "cancelled", "S17": "entered-in-error", "S26": "noshow"}
_PARTICIPANT = {"CONFIRMED": "accepted", "BOOKED": "accepted", "PENDING": "needs-action",
                "CANCELLED": "declined", "DELETED": "declined"}


def sch(ctx: Conversion, seg: Seg) -> None:
    status = (_STATUS.get(seg[25].upper()) or
              _BY_TRIGGER.get(ctx.message.trigger_event.upper(), "booked"))
    body: Json = {"status": status}
    idents = [i for n, code in ((1, "PLAC"), (2, "FILL"))
              if (i := ctx.entity_identifier(seg.field(n), code))]
    if idents:
        body["identifier"] = idents
    if kind := dt.codeable(seg.field(8), "0276"):
        body["appointmentType"] = kind
    if reason := dt.codeable(seg.field(7)):
        body["reasonCode"] = [reason]
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
    """AIS-3 service -> serviceType; AIS-4 start and AIS-7 duration when SCH-11 gave none."""
    appt = ctx.appointment
    if appt is None:
        return
    if service := dt.codeable(seg.field(3)):
        appt.setdefault("serviceType", []).append(service)
    _times(ctx, appt, seg[4], seg[7], seg.field(8)[1])


def _times(ctx: Conversion, appt: Json, start_text: str, duration: str, unit: str) -> None:
    start = ctx.instant(start_text)
    if start and "start" not in appt:
        appt["start"] = start
        minutes = _minutes(duration, unit)
        if minutes and "end" not in appt:
            appt["end"] = (datetime.fromisoformat(start) + timedelta(minutes=minutes)) \
                .isoformat()
            appt.setdefault("minutesDuration", minutes)


def _participant(ctx: Conversion, actor: Json | None, seg: Seg, status_field: int) -> None:
    appt = ctx.appointment
    if appt is None or actor is None:
        return
    status = _PARTICIPANT.get(seg[status_field].upper(), "accepted")
    if not any(p.get("actor") == actor for p in appt["participant"]):
        appt["participant"].append({"actor": actor, "status": status})


def aip(ctx: Conversion, seg: Seg) -> None:
    """AIP-3 personnel (XCN) -> a Practitioner participant."""
    for f in seg.reps(3):
        _participant(ctx, practitioner(ctx, f), seg, 12)
    if ctx.appointment is not None:
        _times(ctx, ctx.appointment, seg[6], seg[9], seg.field(10)[1])


def ail(ctx: Conversion, seg: Seg) -> None:
    """AIL-3 location (PL) -> a Location participant."""
    _participant(ctx, location(ctx, seg.field(3)), seg, 12)
    if ctx.appointment is not None:
        _times(ctx, ctx.appointment, seg[6], seg[9], seg.field(10)[1])


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
