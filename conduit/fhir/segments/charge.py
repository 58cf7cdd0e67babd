"""FT1 (DFT/BAR financial transactions) -> ChargeItem, and its FT1-25 procedure -> Procedure.

The IG maps FT1 to ChargeItem: what was charged (FT1-7), when (FT1-4), how many (FT1-10), for
how much (FT1-11), by whom (FT1-20) and why (FT1-19). The procedure code a charge carries
(FT1-25) is also a Procedure done to the patient, as Microsoft's converter has it too; its
status is left "unknown" since a charge says a procedure was billed, not how it went.
"""

from __future__ import annotations

from conduit.fhir import datatypes as dt
from conduit.fhir.context import Conversion, Json, ref
from conduit.fhir.entities import practitioner
from conduit.fhir.segments.allergy import _code_key
from conduit.fhir.v2 import Seg

# table 0017 transaction type -> ChargeItem.status
_STATUS = {"CG": "billable", "CD": "aborted", "PY": "unknown", "AJ": "unknown"}


def ft1(ctx: Conversion, seg: Seg) -> None:
    if ctx.patient is None:
        return  # ChargeItem.subject is required
    procedure = dt.codeable(seg.field(25))
    code = dt.codeable(seg.field(7)) or procedure or \
        ({"text": seg[8]} if seg[8] else None)
    if code is None:
        return  # ChargeItem.code is required
    body: Json = {"status": _STATUS.get(seg[6].upper(), "unknown")}
    idents = [{"system": ctx.systems.sender, "value": v} for v in (seg[2], seg[3]) if v]
    if idents:
        body["identifier"] = idents[:1]
    body["code"] = code
    body["subject"] = {"reference": ctx.patient}
    if ctx.encounter:
        body["context"] = {"reference": ctx.encounter}
    when = seg.field(4)
    start, end = ctx.datetime(when.sub(1, 1) or when[1]), ctx.datetime(when.sub(1, 2))
    if start and end:
        body["occurrencePeriod"] = {"start": start, "end": end}
    elif start:
        body["occurrenceDateTime"] = start
    if (quantity := dt.number(seg[10])) is not None:
        body["quantity"] = {"value": quantity}
    amount = seg.field(11)
    if (price := dt.number(amount.sub(1, 1))) is not None:
        money: Json = {"value": price}
        if len(currency := amount.sub(1, 2)) == 3 and currency.isalpha():
            money["currency"] = currency.upper()
        body["priceOverride"] = money
    performer = practitioner(ctx, seg.field(20))
    if performer:
        body["performer"] = [{"actor": performer}]
    if enterer := practitioner(ctx, seg.field(24)):
        body["enterer"] = enterer
    if entered := ctx.datetime(seg[5]):
        body["enteredDate"] = entered
    reasons = [c for f in seg.reps(19) if (c := dt.codeable(f))]
    if reasons:
        body["reason"] = reasons
    if product := dt.codeable(seg.field(29)):
        body["productCodeableConcept"] = product
    key = (ctx.sender_key("id", seg[2]) if seg[2] else ctx.local_key("ChargeItem"))
    charge = ctx.add("ChargeItem", key, body)
    if procedure is not None:
        done: Json = {"status": "unknown", "code": procedure,
                      "subject": {"reference": ctx.patient}}
        if ctx.encounter:
            done["encounter"] = {"reference": ctx.encounter}
        if start:
            done["performedDateTime"] = start
        if performer:
            done["performer"] = [{"actor": performer}]
        if reasons:
            done["reasonCode"] = reasons
        proc = ctx.add("Procedure", (ctx.patient, *_code_key(procedure), seg.field(4).raw),
                       done)
        charge["service"] = [ref(proc)]
