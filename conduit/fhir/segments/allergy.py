"""AL1 and IAM -> AllergyIntolerance (IG: AL1[AllergyIntolerance], IAM[AllergyIntolerance])."""

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
# table 0438 allergy clinical status -> verification status
_VERIFICATION = {"C": "confirmed", "P": "unconfirmed", "S": "unconfirmed", "U": "unconfirmed",
                 "E": "entered-in-error"}
_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
_VERIFIED = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"


def al1(ctx: Conversion, seg: Seg) -> None:
    _allergy(ctx, seg, identifier=0, onset=6)


def iam(ctx: Conversion, seg: Seg) -> None:
    """IAM (ADT^A60): as AL1, plus its unique id (IAM-7), action (IAM-6), status (IAM-17)."""
    resource = _allergy(ctx, seg, identifier=7, onset=11)
    if resource is None:
        return
    status = seg.field(17)[1].upper()
    if seg.field(6)[1].upper() == "D":
        status = "E"  # a deleted allergy record was entered in error (IG ConceptMap)
    if verification := _VERIFICATION.get(status):
        resource["verificationStatus"] = {"coding": [dt.coding(verification, "", _VERIFIED)]}
        if verification == "entered-in-error":
            resource.pop("clinicalStatus", None)  # ait-2: no clinical status when in error
    if recorded := ctx.datetime(seg[13]):
        resource["recordedDate"] = recorded


def _allergy(ctx: Conversion, seg: Seg, *, identifier: int, onset: int) -> Json | None:
    if ctx.patient is None:
        return None  # AllergyIntolerance.patient is required
    code = dt.codeable(seg.field(3))
    if code is None:
        return None
    kind = seg.field(2)[1].upper()
    body: Json = {
        "clinicalStatus": {"coding": [dt.coding("active", "Active", _CLINICAL)]},
        "type": "allergy",
    }
    ident = ctx.entity_identifier(seg.field(identifier)) if identifier else None
    if ident:
        body["identifier"] = [ident]
    if category := _CATEGORY.get(kind):
        body["category"] = [category]
    severity = seg.field(4)[1].upper()
    if criticality := _CRITICALITY.get(severity):
        body["criticality"] = criticality
    body["code"] = code
    body["patient"] = {"reference": ctx.patient}
    manifestations = [{"text": f.text()} for f in seg.reps(5) if f.text()]
    identified = ctx.datetime(seg[onset])
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
    # one allergy per patient and allergen (or per IAM unique id): a resent or updated
    # record updates it
    key = ("id", dt.identifier_key(ident)) if ident else (ctx.patient, *_code_key(code))
    return ctx.add("AllergyIntolerance", key, body)


def _code_key(code: Json) -> tuple[str, ...]:
    first = (code.get("coding") or [{}])[0]
    return (first.get("system", ""), first.get("code", "") or code.get("text", ""))
