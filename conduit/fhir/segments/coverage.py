"""IN1 -> Coverage, with the insurer as an Organization (IG: IN1[Coverage])."""

from __future__ import annotations

from conduit.fhir import datatypes as dt
from conduit.fhir.context import Conversion, Json
from conduit.fhir.entities import organization_of
from conduit.fhir.segments.patient import add_to_patient
from conduit.fhir.v2 import Seg

# table 0063 relationship -> subscriber-relationship
_RELATIONSHIP = {"SEL": "self", "SPO": "spouse", "DOM": "common", "CHD": "child",
                 "FCH": "child", "SCH": "child", "PAR": "parent", "EMC": "other",
                 "OTH": "other", "ONE": "self", "INJ": "injured"}
_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
_RELATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"


def in1(ctx: Conversion, seg: Seg) -> None:
    if ctx.patient is None:
        return
    insurer_id = seg.field(3)
    name = seg[4]
    insurer = ctx.identifier(insurer_id)
    payor = organization_of(ctx, name, insurer_id[1], insurer["system"] if insurer else None)
    body: Json = {"status": "active"}
    if policy := seg[36]:
        body["identifier"] = [{"value": policy, "system": ctx.systems.sender}]
    if kind := dt.codeable(seg.field(15), "0086"):
        body["type"] = kind
    if subscriber := seg[49]:
        body["subscriberId"] = subscriber
    body["beneficiary"] = {"reference": ctx.patient}
    relation = seg[17].upper()
    rel = _RELATIONSHIP.get(relation)
    if rel:
        body["relationship"] = {"coding": [dt.coding(rel, "", _RELATION_SYSTEM)]}
    if p := ctx.period(seg[12], seg[13]):
        body["period"] = p
    # payor is required: without an insurer the patient is the payor (self-pay), as FHIR allows
    body["payor"] = [payor or {"reference": ctx.patient}]
    classes = []
    if plan := seg.field(2)[1]:
        classes.append({"type": {"coding": [dt.coding("plan", "Plan", _CLASS)]}, "value": plan,
                        **({"name": seg.field(2)[2]} if seg.field(2)[2] else {})})
    if group := seg[8]:
        classes.append({"type": {"coding": [dt.coding("group", "Group", _CLASS)]},
                        "value": group, **({"name": seg[9]} if seg[9] else {})})
    if classes:
        body["class"] = classes
    key = (ctx.patient, policy or plan or seg[1], insurer_id[1] or name)
    ctx.add("Coverage", key, body)
    ctx.insured_is_patient = rel == "self"


def in2(ctx: Conversion, seg: Seg) -> None:
    """IN2 identifiers of the insured (SSN, Medicare, Medicaid, military id, member number)
    belong to the Patient only when IN1-17 says the insured is the patient; Microsoft's
    converter adds them to the Patient even when the insured is, say, the spouse."""
    if not ctx.insured_is_patient:
        return
    idents: list[Json] = [i for f in seg.reps(1) if (i := ctx.identifier(f))]
    for n, code in ((2, "SS"), (6, "MC"), (8, "MA"), (10, "MI")):
        if value := seg[n]:
            idents.append({"type": {"coding": [dt.coding(code, "", dt.table_uri("0203"))]},
                           "system": ctx.systems.system("", "", "", code, value)[0],
                           "value": value})
    idents += [i for f in seg.reps(61) if (i := ctx.identifier(f))]
    add_to_patient(ctx, identifiers=idents)
