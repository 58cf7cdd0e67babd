"""PV1 and PV2 -> Encounter, with its Locations and Practitioners (IG: PV1[Encounter])."""

from __future__ import annotations

from conduit.fhir import datatypes as dt
from conduit.fhir.context import Conversion, Json, ref
from conduit.fhir.entities import location, practitioner
from conduit.fhir.v2 import Seg

_ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
# Table 0004 patient class -> v3 ActCode (IG ConceptMap PatientClass). R (recurring) and C
# (commercial account) are ambulatory; B (obstetrics) is an inpatient stay.
_CLASS = {"E": ("EMER", "emergency"), "I": ("IMP", "inpatient encounter"),
          "O": ("AMB", "ambulatory"), "P": ("PRENC", "pre-admission"),
          "R": ("AMB", "ambulatory"), "B": ("IMP", "inpatient encounter"),
          "C": ("AMB", "ambulatory")}
_PLANNED = frozenset({"A05", "A14"})
_CANCELLED = frozenset({"A11", "A27", "A38"})
_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"


def encounter_status(ctx: Conversion, seg: Seg) -> str:
    """Encounter.status from the trigger event and PV1-45 (discharge time), as the IG does."""
    trigger = ctx.message.trigger_event.upper()
    if trigger in _CANCELLED:
        return "cancelled"
    if trigger == "A13":  # cancel discharge: the stay goes on, whatever PV1-45 still says
        return "in-progress"
    if seg[45] or trigger == "A03":
        return "finished"
    if trigger in _PLANNED:
        return "planned"
    return "in-progress"


def pv1(ctx: Conversion, seg: Seg) -> None:
    patient_class = seg[2].upper()
    code = _CLASS.get(patient_class)
    body: Json = {
        "status": encounter_status(ctx, seg),
        # Encounter.class is required: an unknown or missing PV1-2 is said to be unknown
        "class": (dt.coding(code[0], code[1], _ACT) if code else
                  dt.coding(patient_class, "", dt.table_uri("0004")) if patient_class else
                  dt.coding("UNK", "unknown",
                            "http://terminology.hl7.org/CodeSystem/v3-NullFlavor")),
    }
    idents = [i for f in (*seg.reps(19), *seg.reps(50)) if (i := ctx.identifier(f, "VN"))]
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
                                                                     _PARTICIPATION)]}],
                                     "individual": who})
    if participants:
        body["participant"] = participants
    locations = []
    for n, status in ((3, "active"), (6, "completed"), (11, "active"), (42, "planned"),
                      (43, "completed")):
        for f in seg.reps(n):
            where = location(ctx, f)
            if where:
                locations.append({"location": where, "status": status})
    if locations:
        body["location"] = locations
    stay = _hospitalization(ctx, seg)
    if stay:
        body["hospitalization"] = stay
    key = ((dt.identifier_key(idents[0]),) if idents else
           (ctx.patient or "", "admit", seg[44]) if seg[44] else ctx.local_key("Encounter"))
    resource = ctx.add("Encounter", key, body)
    ctx.encounter = ref(resource)["reference"]


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
    return stay


def pv2(ctx: Conversion, seg: Seg) -> None:
    """PV2-3 admit reason -> reasonCode; PV2-8/PV2-9 expected admit/discharge -> period."""
    if ctx.encounter is None:
        return
    encounter = ctx.resources[ctx.encounter]
    if reason := dt.codeable(seg.field(3)):
        encounter.setdefault("reasonCode", []).append(reason)
    # expected admit/discharge (PV2-8/PV2-9) stand in for the actual times PV1 lacks
    period = encounter.setdefault("period", {})
    if "start" not in period and (start := ctx.datetime(seg[8])):
        period["start"] = start
    if "end" not in period and encounter["status"] != "in-progress" \
            and (end := ctx.datetime(seg[9])):
        period["end"] = end
    if not period:
        del encounter["period"]
    locations = [{"location": where, "status": "planned"}
                 for f in seg.reps(1) if (where := location(ctx, f))]  # prior pending
    if locations:
        encounter.setdefault("location", []).extend(locations)
