"""RXA (+ RXR, + the ORC before it) -> Immunization (IG: RXA[Immunization], VXU map)."""

from __future__ import annotations

from conduit.fhir import datatypes as dt
from conduit.fhir.context import Conversion, Json
from conduit.fhir.entities import organization_of, practitioner
from conduit.fhir.segments.order import order_identifiers
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
    elif completion in _NOT_DONE or seg.field(5)[1] == "998":  # CVX 998: none administered
        status = "not-done"
    else:
        status = "completed"
    body: Json = {"status": status}
    idents = order_identifiers(orc_seg, None)
    if idents:
        body["identifier"] = idents
    if status == "not-done" and (reason := dt.codeable(seg.field(18))):
        body["statusReason"] = reason
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
    for f, code, display in ((seg.field(10), "AP", "Administering Provider"),
                             (orc_seg.field(12) if orc_seg else None, "OP",
                              "Ordering Provider")):
        if f is not None and (who := practitioner(ctx, f)):
            performers.append({"function": {"coding": [dt.coding(code, display, _FUNCTION)]},
                               "actor": who})
    if performers:
        body["performer"] = performers
    key = (("order", dt.identifier_key(idents[0])) if idents else
           (ctx.patient, seg.field(5)[1], seg[3], seg[2]))
    ctx.immunization = ctx.add("Immunization", key, body)


def rxr(ctx: Conversion, seg: Seg) -> None:
    """RXR-1 route, RXR-2 site (tables 0162/0163) on the current Immunization."""
    imm = ctx.immunization
    if imm is None:
        return
    if route := dt.codeable(seg.field(1), "0162"):
        imm["route"] = route
    if site := dt.codeable(seg.field(2), "0163"):
        imm["site"] = site
