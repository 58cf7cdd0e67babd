"""PR1 -> Procedure (IG: PR1[Procedure])."""

from __future__ import annotations

from conduit.fhir import datatypes as dt
from conduit.fhir.context import Conversion, Json
from conduit.fhir.entities import practitioner
from conduit.fhir.segments.allergy import _code_key
from conduit.fhir.v2 import Seg

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
    if when := ctx.datetime(seg[5]):
        body["performedDateTime"] = when
    performers = []
    for n, function, display in ((8, "AN", "Anesthesiologist"), (11, "PP", "Surgeon"),
                                 (12, "PP", "Primary performer")):
        for f in seg.reps(n):
            if who := practitioner(ctx, f):
                performers.append({"function": {"coding": [dt.coding(function, display,
                                                                     _FUNCTION)]},
                                   "actor": who})
    if performers:
        body["performer"] = performers
    reasons = [c for f in seg.reps(15) if (c := dt.codeable(f))]
    if reasons:
        body["reasonCode"] = reasons
    key = (("id", dt.identifier_key(ident)) if ident else
           (ctx.patient, *_code_key(code), seg[5]))
    ctx.add("Procedure", key, body)
