"""PR1 -> Procedure (IG: PR1[Procedure])."""

from __future__ import annotations

from datetime import datetime, timedelta

from conduit.fhir import datatypes as dt
from conduit.fhir.context import Conversion, Json
from conduit.fhir.entities import location, practitioner
from conduit.fhir.segments.allergy import _code_key
from conduit.fhir.v2 import Seg

_SNOMED = "http://snomed.info/sct"
_FUNCTION = "http://terminology.hl7.org/CodeSystem/v2-0443"


def pr1(ctx: Conversion, seg: Seg) -> None:
    if ctx.patient is None:
        return
    code = dt.codeable(seg.field(3)) or ({"text": seg[4]} if seg[4] else None)
    if code is None:
        return
    if seg[4] and "text" not in code:
        code["text"] = seg[4]
    # a PR1 reports a procedure done (the IG's default status for PR1 is "completed")
    body: Json = {"status": "completed", "code": code, "subject": {"reference": ctx.patient}}
    if ident := ctx.entity_identifier(seg.field(19)):
        body["identifier"] = [ident]
    if ctx.encounter:
        body["encounter"] = {"reference": ctx.encounter}
    if category := dt.codeable(seg.field(6), "0230"):  # PR1-6 procedure functional type
        body["category"] = category
    when = ctx.datetime(seg[5])
    minutes = int(seg[7]) if seg[7].isdigit() else 0  # PR1-7 procedure minutes
    if when and minutes and "T" in when:
        end = datetime.fromisoformat(when) + timedelta(minutes=minutes)
        body["performedPeriod"] = {"start": when, "end": end.isoformat()}
    elif when:
        body["performedDateTime"] = when
    performers = []
    for n, function in ((8, dt.coding("88189002", "Anesthesiologist", _SNOMED)),
                        (11, dt.coding("304292004", "Surgeon", _SNOMED)),
                        (12, dt.coding("PP", "Primary performer", _FUNCTION))):
        for f in seg.reps(n):
            if who := practitioner(ctx, f):
                performers.append({"function": {"coding": [function]}, "actor": who})
    if performers:
        body["performer"] = performers
    if where := location(ctx, seg.field(23)):  # PR1-23 procedure location
        body["location"] = where
    if parent := ctx.entity_identifier(seg.field(25)):  # PR1-25 parent procedure id
        body["partOf"] = [{"type": "Procedure", "identifier": parent}]
    reasons = [c for f in seg.reps(15) if (c := dt.codeable(f))]
    if reasons:
        body["reasonCode"] = reasons
    key = (("id", dt.identifier_key(ident)) if ident else
           (ctx.patient, *_code_key(code), seg[5]))
    ctx.add("Procedure", key, body)
