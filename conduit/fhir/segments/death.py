"""PDA (patient death and autopsy) -> cause-of-death Conditions, the death location, and a
deceased Patient (IG: PDA[Condition], PDA[Encounter])."""

from __future__ import annotations

from conduit.fhir import datatypes as dt
from conduit.fhir.context import Conversion, Json
from conduit.fhir.entities import location, practitioner
from conduit.fhir.segments.allergy import _code_key
from conduit.fhir.v2 import Seg


def pda(ctx: Conversion, seg: Seg) -> None:
    if ctx.patient is None:
        return
    patient = ctx.resources[ctx.patient]
    if "deceasedDateTime" not in patient:
        patient["deceasedBoolean"] = True
    certifier = practitioner(ctx, seg.field(5))
    for f in seg.reps(1):
        code = dt.codeable(f)
        if code is None:
            continue
        body: Json = {"code": code, "subject": {"reference": ctx.patient},
                      "note": [{"text": "cause of death"}]}
        if ctx.encounter:
            body["encounter"] = {"reference": ctx.encounter}
        if certifier:
            body["asserter"] = certifier
        if recorded := ctx.datetime(seg[4]):
            body["recordedDate"] = recorded
        ctx.add("Condition", (ctx.patient, "cause-of-death", *_code_key(code)), body)
    if ctx.encounter and (where := location(ctx, seg.field(2))):
        ctx.resources[ctx.encounter].setdefault("location", []).append(
            {"location": where, "status": "completed"})
