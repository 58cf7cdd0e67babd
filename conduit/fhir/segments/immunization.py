"""RXA (+ RXR, + the ORC before it) -> Immunization (IG: RXA[Immunization], VXU map)."""

from __future__ import annotations

from conduit.fhir import datatypes as dt
from conduit.fhir import vocabulary
from conduit.fhir.context import Conversion, Json
from conduit.fhir.entities import location, organization_of, practitioner, practitioner_role
from conduit.fhir.segments.order import group_numbers, order_identifiers, security_labels
from conduit.fhir.v2 import Seg

_FUNCTION = "http://terminology.hl7.org/CodeSystem/v2-0443"
_MVX = "http://terminology.hl7.org/CodeSystem/MVX"
_NOT_DONE = frozenset({"RE", "NA"})


def rxa(ctx: Conversion, seg: Seg) -> None:
    ctx.immunization = None
    if ctx.patient is None:
        return
    orc_seg, ctx.pending_orc = ctx.pending_orc, None
    vaccine = dt.codeable(seg.field(5))
    if vaccine is None:
        return  # vaccineCode is required
    completion = seg[20].upper()
    if seg[21].upper() == "D":
        status = "entered-in-error"
    elif seg.field(5)[1] == "998":  # CVX 998: no vaccine administered
        status = "not-done"
    else:  # RXA-20 by the IG's CompletionStatus map; an empty RXA-20 is a completed dose
        status = vocabulary.code("CompletionStatus", completion) or \
            ("not-done" if completion in _NOT_DONE else "completed")
    body: Json = {"status": status}
    idents = order_identifiers(ctx, orc_seg, None)
    placer_group, filler_group = group_numbers(ctx, orc_seg) if orc_seg is not None \
        else (None, None)
    groups = [i for i in (filler_group, placer_group) if i]  # ORC-4 (IG ORC[Immunization])
    if idents or groups:
        body["identifier"] = idents + groups
    if security := security_labels(orc_seg):
        body["meta"] = {"security": security}
    if status == "not-done" and (reason := dt.codeable(seg.field(18))):
        body["statusReason"] = reason  # RXA-18 refusal reason: a reason the dose was not given
    body["vaccineCode"] = vaccine
    body["patient"] = {"reference": ctx.patient}
    if ctx.encounter:
        body["encounter"] = {"reference": ctx.encounter}
    when = ctx.datetime(seg[3])
    # occurrence[x] is required: a missing RXA-3 is said in words rather than guessed
    body.update({"occurrenceDateTime": when} if when else {"occurrenceString": "unknown"})
    notes = seg.field(9)
    if notes[1] in ("00", "01"):
        # NIP001: 00 = new record (the sender gave it: primary source), 01 = historical
        body["primarySource"] = notes[1] == "00"
        if notes[1] == "01" and (origin := dt.codeable(notes)):
            body["reportOrigin"] = origin
    if seg[21].upper() == "A" and (entered := ctx.datetime(seg[22])):
        body["recorded"] = entered  # RXA-22 system entry time of an added record
    elif orc_seg is not None and (entered := ctx.datetime(orc_seg[9])):
        body["recorded"] = entered  # ORC-9 date/time of transaction
    if where := _location(ctx, seg):
        body["location"] = where
    if seg[15]:
        body["lotNumber"] = seg[15]
    if expiry := dt.date(seg[16]):
        body["expirationDate"] = expiry
    maker = seg.field(17)
    if maker[1] or maker[2]:
        system = _MVX if maker[3].upper() in ("MVX", "") else None
        if org := organization_of(ctx, maker[2], maker[1], system):
            body["manufacturer"] = org
    dose = seg[6]
    if dose and dose != "999" and (value := dt.number(dose)) is not None:
        quantity: Json = {"value": value}
        unit = seg.field(7)
        if unit[1]:
            quantity["unit"] = unit[2] or unit[1]
            if unit[3].upper() == "UCUM":
                quantity.update(system="http://unitsofmeasure.org", code=unit[1])
        body["doseQuantity"] = quantity
    performers = []
    if who := practitioner(ctx, seg.field(10)):
        performers.append({"function": {"coding": [dt.coding("AP", "Administering Provider",
                                                             _FUNCTION)]}, "actor": who})
    # ORC-12 ordering provider: a PractitionerRole (IG ORC[Immunization])
    if orc_seg is not None and (who := practitioner_role(ctx, practitioner(
            ctx, orc_seg.field(12)))):
        performers.append({"function": {"coding": [dt.coding("OP", "Ordering Provider",
                                                             _FUNCTION)]}, "actor": who})
    if performers:
        body["performer"] = performers
    reasons = [c for f in seg.reps(19) if (c := dt.codeable(f))]
    if reasons:
        body["reasonCode"] = reasons
    key = ctx.distinct("Immunization", ("order", dt.identifier_key(idents[0])) if idents else
                       (ctx.patient, seg.field(5)[1], seg[3], seg[2]))
    ctx.immunization = ctx.add("Immunization", key, body)


def _location(ctx: Conversion, seg: Seg) -> Json | None:
    """RXA-27 administer-at (PL; v2.6+), else RXA-11 (LA2, whose first parts are a PL's),
    with RXA-28 (or LA2's street address parts) as the Location's address."""
    pl = seg.field(27) if seg.field(27) else seg.field(11)
    where = location(ctx, pl)
    if where is None:
        return None
    address = dt.address(seg.field(28)) if seg.field(28) else None
    if address is None and pl is seg.field(11):
        la2 = pl
        address = {k: v for k, v in (("line", [la2[9]] if la2[9] else None), ("city", la2[11]),
                                     ("state", la2[12]), ("postalCode", la2[13]),
                                     ("country", la2[14])) if v} or None
    if address is not None:
        ctx.resources[where["reference"]].setdefault("address", address)
    return where


def rxr(ctx: Conversion, seg: Seg) -> None:
    """RXR-1 route, RXR-2 site (tables 0162/0163) on the current Immunization."""
    imm = ctx.immunization
    if imm is None:
        return
    if route := dt.codeable(seg.field(1), "0162"):
        imm["route"] = route
    if site := dt.codeable(seg.field(2), "0163"):
        imm["site"] = site
