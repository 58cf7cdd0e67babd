"""PV1 and PV2 -> Encounter, with its Locations and Practitioners (IG: PV1[Encounter])."""

from __future__ import annotations

import html

from conduit.fhir import datatypes as dt
from conduit.fhir import vocabulary
from conduit.fhir.context import Conversion, Json, ref
from conduit.fhir.entities import location, practitioner
from conduit.fhir.v2 import Field, Seg

_PLANNED = frozenset({"A05", "A14"})
_CANCELLED = frozenset({"A11", "A27", "A38"})
_LOCATION_CLASS = "http://hl7.org/fhir/StructureDefinition/subject-locationClassification"
_DESCRIPTION = "http://hl7.org/fhir/StructureDefinition/resource-instance-description"
_PLANNED_START = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Encounter.plannedStartDate"
_PLANNED_END = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Encounter.plannedEndDate"
_ARRIVAL = "http://hl7.org/fhir/StructureDefinition/encounter-modeOfArrival"
_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"


def encounter_status(ctx: Conversion, seg: Seg) -> str:
    """Encounter.status from the trigger event and PV1-45 (discharge time), as the IG does."""
    trigger = ctx.trigger_event.upper()
    if trigger in _CANCELLED:
        return "cancelled"
    if trigger == "A13":  # cancel discharge: the stay goes on, whatever PV1-45 still says
        return "in-progress"
    if seg[45] or trigger == "A03":
        return "finished"
    if trigger in _PLANNED:
        return "planned"
    # PV1-2 by the IG's PatientClass[EncounterStatus] map (P preadmit: planned, U: unknown)
    return vocabulary.code("PatientClass[EncounterStatus]", seg[2]) or "in-progress"


def pv1(ctx: Conversion, seg: Seg) -> None:
    patient_class = seg[2].upper()
    body: Json = {
        "status": encounter_status(ctx, seg),
        # Encounter.class by the IG's PatientClass[EncounterClass] map; it is required: an
        # unknown or missing PV1-2 is said to be unknown
        "class": (vocabulary.coding("PatientClass[EncounterClass]", patient_class) or
                  (dt.coding(patient_class, "", dt.table_uri("0004")) if patient_class else
                   dt.coding("UNK", "unknown",
                             "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"))),
    }
    idents = [i for f in seg.reps(19) if (i := _visit_number(ctx, f))]
    idents += [i for f in seg.reps(50) if (i := ctx.identifier(f, "VN"))]
    if idents:
        body["identifier"] = idents
    types = [c for c in (dt.code_concept(seg[4], "0007", seg.field(4)[2]),
                         dt.code_concept(seg[18], "0018", seg.field(18)[2])) if c]
    if types:
        body["type"] = types
    if service := dt.code_concept(seg[10], "0069", seg.field(10)[2]):
        body["serviceType"] = service
    if ctx.patient:
        body["subject"] = {"reference": ctx.patient}
    discharge = seg[45] if body["status"] != "in-progress" else ""
    if p := ctx.period(seg[44], discharge):
        body["period"] = p
    participants = []
    for n, role, display in ((7, "ATND", "attender"), (8, "REF", "referrer"),
                             (9, "CON", "consultant"), (17, "ADM", "admitter"),
                             (52, "PART", "Participation")):
        for f in seg.reps(n):
            who = practitioner(ctx, f)
            if who:
                participants.append({"type": [{"coding": [dt.coding(role, display,
                                                                     _PARTICIPATION)],
                                               "text": display}],
                                     "individual": who})
    if participants:
        body["participant"] = participants
    locations = []
    for n, status in ((3, "active"), (6, "completed"), (11, "active"), (42, "planned"),
                      (43, "completed")):
        for f in seg.reps(n):
            where = location(ctx, f)
            if where:
                entry: Json = {"location": where, "status": status}
                if n == 11:  # PV1-11 temporary location
                    entry["extension"] = [{"url": _LOCATION_CLASS, "valueCodeableConcept": {
                        "coding": [dt.coding("temporary", "Temporary")]}}]
                locations.append(entry)
    if locations:
        body["location"] = locations
        _bed_status(ctx, seg, locations[0]["location"])
    stay = _hospitalization(ctx, seg)
    if stay:
        body["hospitalization"] = stay
    key = ((dt.identifier_key(idents[0]),) if idents else
           (ctx.patient or "", "admit", seg[44]) if seg[44] else ctx.local_key("Encounter"))
    if episode := _episode(ctx, seg, body["status"]):
        body["episodeOfCare"] = [episode]
    resource = ctx.add("Encounter", key, body)
    ctx.encounter = ref(resource)["reference"]


def _visit_number(ctx: Conversion, f: Field) -> Json | None:
    """PV1-19 -> an Identifier typed VN "visit number" whatever CX.5 says: the IG's
    PV1[Encounter] assigns that type to the field (and the system rule reads it as one)."""
    ident = ctx.identifier(f, "VN", kind=0)  # kind=0: CX.5 not read, nor CX.7/8
    if ident is not None:
        ident["type"]["text"] = "visit number"
        if valid := dt.period(f[7], f[8]):
            ident["period"] = valid
    return ident


def _bed_status(ctx: Conversion, seg: Seg, where: Json) -> None:
    """PV1-40 bed status -> operationalStatus of PV1-3's Location, when PV1-3 names a room or
    bed (IG PV1[Encounter], BedStatus map)."""
    point = seg.field(3)
    status = vocabulary.coding("BedStatus", seg[40])
    if status and (point[2] or point[3]) and seg.reps(3):
        ctx.resources[where["reference"]].setdefault("operationalStatus", status)


def _episode(ctx: Conversion, seg: Seg, status: str) -> Json | None:
    """PV1-54 service episode identifier (PV1-53 its description) -> EpisodeOfCare. Only for
    an ongoing visit, whose episode is active; a finished visit says nothing of its episode."""
    ident = ctx.identifier(seg.field(54))
    if ident is None or ctx.patient is None or status != "in-progress":
        return None
    body: Json = {"identifier": [ident], "status": "active",
                  "patient": {"reference": ctx.patient}}
    if seg[53]:
        body["extension"] = [{"url": _DESCRIPTION, "valueString": seg[53]}]
    return ctx.add_ref("EpisodeOfCare", ("episode", dt.identifier_key(ident)), body)


def _hospitalization(ctx: Conversion, seg: Seg) -> Json:
    stay: Json = {}
    if pre := ctx.identifier(seg.field(5)):
        stay["preAdmissionIdentifier"] = pre
    for key, n, table in (("reAdmission", 13, "0092"), ("admitSource", 14, "0023"),
                          ("dischargeDisposition", 36, "0112")):
        if c := dt.codeable(seg.field(n), table):
            stay[key] = c
    diets = [c for f in seg.reps(38) if (c := dt.codeable(f, "0114"))]
    if diets:
        stay["dietPreference"] = diets
    arrangements = [c for f in seg.reps(15) if (c := dt.codeable(f, "0009"))]
    if arrangements:
        stay["specialArrangement"] = arrangements
    if courtesy := dt.codeable(seg.field(16), "0099"):  # PV1-16 VIP indicator
        stay["specialCourtesy"] = [courtesy]
    # PV1-37 DLD: discharge location (IS, or CWE from v2.6 whose text is its 2nd part)
    destination = seg.field(37)
    if label := destination.part(1)[2] or destination[1]:
        stay["destination"] = ctx.add_ref("Location", ("discharged-to", label),
                                          {"name": label, "mode": "kind"})
    return stay


def pv2(ctx: Conversion, seg: Seg) -> None:
    """PV2 -> the Encounter (IG PV2[Encounter]): admit reason, expected admit and discharge
    (R5 plannedStartDate/plannedEndDate extensions: expected times are not the period),
    length of stay, visit description, referral source, priority, mode of arrival."""
    if ctx.encounter is None:
        return
    encounter = ctx.resources[ctx.encounter]
    if reason := dt.codeable(seg.field(3)):
        encounter.setdefault("reasonCode", []).append(reason)
    extensions: list[Json] = [{"url": url, "valueDateTime": when}
                  for n, url in ((8, _PLANNED_START), (9, _PLANNED_END))
                  if (when := ctx.datetime(seg[n]))]
    if arrival := vocabulary.coding("ModeOfArrivalCode", seg[38]):
        extensions.append({"url": _ARRIVAL, "valueCoding": arrival})
    if extensions:
        encounter.setdefault("extension", []).extend(extensions)
    if seg[11].isdigit():  # PV2-11 actual length of inpatient stay, in days
        encounter["length"] = {"value": int(seg[11]), "unit": "days",
                               "system": "http://unitsofmeasure.org", "code": "d"}
    if description := seg.field(12).text():
        encounter["text"] = {"status": "generated", "div": (
            f'<div xmlns="http://www.w3.org/1999/xhtml">{html.escape(description)}</div>')}
    for f in seg.reps(13):
        if who := practitioner(ctx, f):
            encounter.setdefault("participant", []).append(
                {"type": [{"coding": [dt.coding("REF", "referrer", _PARTICIPATION)],
                           "text": "referrer"}], "individual": who})
    if priority := vocabulary.coding("EncounterPriority", seg[25]):
        encounter["priority"] = {"coding": [priority]}
    locations = [{"location": where, "status": "planned"}
                 for f in seg.reps(1) if (where := location(ctx, f))]  # prior pending
    if locations:
        encounter.setdefault("location", []).extend(locations)
