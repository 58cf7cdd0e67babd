"""RF1 (referral information, REF and ADT messages) -> ServiceRequest (IG: RF1[ServiceRequest])."""

from __future__ import annotations

from conduit.fhir import datatypes as dt
from conduit.fhir.context import Conversion, Json
from conduit.fhir.v2 import Seg

# table 0283 referral status -> request-status
_STATUS = {"A": "active", "P": "draft", "R": "revoked", "E": "completed"}
# table 0280 referral priority -> request-priority
_PRIORITY = {"S": "stat", "A": "asap", "R": "routine"}
_REFERRAL = {"coding": [dt.coding("3457005", "Patient referral", "http://snomed.info/sct")]}


def rf1(ctx: Conversion, seg: Seg) -> None:
    if ctx.patient is None:
        return
    body: Json = {"status": _STATUS.get(seg[1].upper(), "unknown"), "intent": "order",
                  "category": [_REFERRAL]}
    ident = ctx.entity_identifier(seg.field(6))
    if ident:
        body["identifier"] = [ident]
    if priority := _PRIORITY.get(seg[2].upper()):
        body["priority"] = priority
    if kind := dt.codeable(seg.field(3), "0281"):
        body["code"] = kind
    body["subject"] = {"reference": ctx.patient}
    if ctx.encounter:
        body["encounter"] = {"reference": ctx.encounter}
    if authored := ctx.datetime(seg[7]):
        body["authoredOn"] = authored
    reasons = [c for f in seg.reps(10) if (c := dt.codeable(f, "0336"))]
    if reasons:
        body["reasonCode"] = reasons
    if seg[14]:
        body["note"] = [{"text": seg[14]}]
    key = (("referral", dt.identifier_key(ident)) if ident else ctx.local_key("Referral"))
    ctx.add("ServiceRequest", key, body)
