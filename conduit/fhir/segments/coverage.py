"""IN1 -> Coverage, with the insurer as an Organization (IG: IN1[Coverage])."""

from __future__ import annotations

from conduit.fhir import datatypes as dt
from conduit.fhir import vocabulary
from conduit.fhir.codesystems import system_uri
from conduit.fhir.context import Conversion, Json
from conduit.fhir.entities import organization_of
from conduit.fhir.segments.patient import add_to_patient
from conduit.fhir.v2 import Seg

# table 0063 relationship -> subscriber-relationship
_RELATIONSHIP = {"SEL": "self", "SPO": "spouse", "DOM": "common", "CHD": "child",
                 "FCH": "child", "SCH": "child", "PAR": "parent", "EMC": "other",
                 "OTH": "other", "ONE": "self", "INJ": "injured"}
_SUBSCRIBER_ID = "http://hl7.org/fhir/5.0/StructureDefinition/extension-subscriberId"
_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
_RELATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"


def in1(ctx: Conversion, seg: Seg) -> None:
    if ctx.patient is None:
        return
    insurer_id = seg.field(3)
    name = seg[4]
    insurer = ctx.identifier(insurer_id)
    payor = organization_of(ctx, name, insurer_id[1], insurer["system"] if insurer else None)
    if payor is not None:  # IN1-5 insurance company address
        _add_addresses(ctx, payor, seg, 5)
    body: Json = {"status": "active"}
    subscriber_ids = [i for f in seg.reps(10) if f[5].upper() == "SN" and
                      (i := ctx.identifier(f))]
    subscriber_ids += [i for f in seg.reps(49) if (i := ctx.identifier(f))]
    if subscriber_ids:  # IN1-10 (type SN) and IN1-49: the R5 subscriberId extension
        body["extension"] = [{"url": _SUBSCRIBER_ID, "valueIdentifier": i}
                             for i in subscriber_ids]
    idents = []
    if policy := seg[36]:
        idents.append({"value": policy, "system": ctx.systems.sender})
    if plan_id := seg.field(2)[1]:  # IN1-2 insurance plan id (IG: Coverage.identifier)
        idents.append({"value": plan_id, "system": system_uri(seg.field(2)[3]) or
                       ctx.systems.sender})
    if idents:
        body["identifier"] = idents
    if kind := dt.codeable(seg.field(15), "0086"):
        body["type"] = kind
    if holder := _policy_holder(ctx, seg):
        body["policyHolder"] = holder
    relation = seg[17].upper()
    rel = _RELATIONSHIP.get(relation)
    if who := _subscriber(ctx, seg, rel == "self"):
        body["subscriber"] = who
    if subscriber := seg[49]:
        body["subscriberId"] = subscriber
    body["beneficiary"] = {"reference": ctx.patient}
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


def _add_addresses(ctx: Conversion, org: Json, seg: Seg, n: int) -> None:
    resource = ctx.resources[org["reference"]]
    for address in (a for f in seg.reps(n) if (a := dt.address(f))):
        if address not in resource.get("address", ()):
            resource.setdefault("address", []).append(address)


def _policy_holder(ctx: Conversion, seg: Seg) -> Json | None:
    """IN1-11 insured's group employer (XON) with its id IN1-10 -> Organization."""
    employer, ident = seg.field(11), ctx.identifier(seg.field(10))
    name = employer[1]
    if not name and ident is None:
        return None
    return organization_of(ctx, name, ident["value"] if ident else "",
                           ident.get("system") if ident else None)


def _subscriber(ctx: Conversion, seg: Seg, is_patient: bool) -> Json | None:
    """IN1-16 name of insured: the patient (IN1-17 SEL) or a RelatedPerson of the patient."""
    names = [n for f in seg.reps(16) if (n := dt.name(f))]
    if not names or ctx.patient is None:
        return None
    if is_patient:
        return {"reference": ctx.patient}
    body: Json = {"patient": {"reference": ctx.patient}, "name": names}
    if kind := vocabulary.mapped(dt.codeable(seg.field(17), "0063"), "Relationship", seg[17]):
        body["relationship"] = [kind]
    return ctx.add_ref("RelatedPerson", (ctx.patient, "insured", seg.field(16).raw), body)


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
