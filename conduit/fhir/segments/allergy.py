"""AL1 -> AllergyIntolerance (IG: AL1[AllergyIntolerance])."""

from __future__ import annotations

from conduit.fhir import datatypes as dt
from conduit.fhir.context import Conversion, Json
from conduit.fhir.v2 import Seg

# table 0127 allergen type -> category; MA/MC (miscellaneous) have none
_CATEGORY = {"DA": "medication", "FA": "food", "EA": "environment", "AA": "environment",
             "PA": "environment", "LA": "environment"}
# table 0128 severity -> criticality and reaction.severity
_CRITICALITY = {"SV": "high", "MO": "low", "MI": "low", "U": "unable-to-assess"}
_SEVERITY = {"SV": "severe", "MO": "moderate", "MI": "mild"}
_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"


def al1(ctx: Conversion, seg: Seg) -> None:
    if ctx.patient is None:
        return  # AllergyIntolerance.patient is required
    code = dt.codeable(seg.field(3))
    if code is None:
        return
    kind = seg.field(2)[1].upper()
    body: Json = {
        "clinicalStatus": {"coding": [dt.coding("active", "Active", _CLINICAL)]},
        "type": "allergy",
    }
    if category := _CATEGORY.get(kind):
        body["category"] = [category]
    severity = seg.field(4)[1].upper()
    if criticality := _CRITICALITY.get(severity):
        body["criticality"] = criticality
    body["code"] = code
    body["patient"] = {"reference": ctx.patient}
    manifestations = [{"text": f.text()} for f in seg.reps(5) if f.text()]
    identified = ctx.datetime(seg[6])
    if manifestations:
        reaction: Json = {"manifestation": manifestations}
        if s := _SEVERITY.get(severity):
            reaction["severity"] = s
        if identified:
            # AL1-6 (identification date) dates the reaction, as Microsoft's converter does
            reaction["onset"] = identified
        body["reaction"] = [reaction]
    elif identified:
        body["onsetDateTime"] = identified
    # one allergy per patient and allergen: a resent or updated AL1 updates it
    ctx.add("AllergyIntolerance", (ctx.patient, *_code_key(code)), body)


def _code_key(code: Json) -> tuple[str, ...]:
    first = (code.get("coding") or [{}])[0]
    return (first.get("system", ""), first.get("code", "") or code.get("text", ""))
