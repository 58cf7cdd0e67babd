"""AL1 and IAM -> AllergyIntolerance (IG: AL1[AllergyIntolerance], IAM[AllergyIntolerance])."""

from __future__ import annotations

from conduit.fhir import datatypes as dt
from conduit.fhir import vocabulary
from conduit.fhir.context import Conversion, Json
from conduit.fhir.v2 import Field, Seg

# table 0438 allergy clinical status -> verification status
_VERIFICATION = {"C": "confirmed", "P": "unconfirmed", "S": "unconfirmed", "U": "unconfirmed",
                 "E": "entered-in-error"}
_ALTERNATE = "http://hl7.org/fhir/StructureDefinition/alternate-codes"
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
    if not ctx.datetime(seg[11]) and (onset := seg.field(12).text()):
        resource["onsetString"] = onset  # IAM-12 onset date text
    extra = dt.codeable(seg.field(27))  # IAM-27 allergen group: more codings of the allergen
    for c in (extra or {}).get("coding", ()):
        if c not in resource["code"].setdefault("coding", []):
            resource["code"]["coding"].append(c)
    if who := _reported_by(ctx, seg):
        resource["recorder"] = who


def _reported_by(ctx: Conversion, seg: Seg) -> Json | None:
    """IAM-14 reported by (XPN) with IAM-15 relationship: the patient (SEL), a RelatedPerson,
    or, without a relationship, a Practitioner known by name (IG IAM[AllergyIntolerance])."""
    names = [n for f in seg.reps(14) if (n := dt.name(f))]
    if not names or ctx.patient is None:
        return None
    relation = seg.field(15)
    if relation[1].upper() == "SEL":
        return {"reference": ctx.patient}
    if relation[1]:
        kind = vocabulary.mapped(dt.codeable(relation, "0063"), "Relationship", relation[1])
        body: Json = {"patient": {"reference": ctx.patient}, "name": names}
        if kind:
            body["relationship"] = [kind]
        return ctx.add_ref("RelatedPerson", (ctx.patient, "reported-by", seg.field(14).raw),
                           body)
    return ctx.add_ref("Practitioner", ctx.local_key("Practitioner"), {"name": names})


def _allergy(ctx: Conversion, seg: Seg, *, identifier: int, onset: int) -> Json | None:
    if ctx.patient is None:
        return None  # AllergyIntolerance.patient is required
    code = dt.codeable(seg.field(3))
    if code is None:
        return None
    kind_field, severity_field = seg.field(2), seg.field(4)
    kind = kind_field[1]
    body: Json = {
        "clinicalStatus": {"coding": [dt.coding("active", "Active", _CLINICAL)]},
    }
    # allergen type (table 0127) -> type and category, severity (0128) -> criticality, by the
    # IG's maps; the sender's own code rides along in an alternate-codes extension
    if allergy_type := vocabulary.code("AllergyType", kind):
        body["type"] = allergy_type
    ident = ctx.entity_identifier(seg.field(identifier)) if identifier else None
    if ident:
        body["identifier"] = [ident]
    if category := vocabulary.code("AllergenType[AllergyIntoleranceCategory]", kind):
        body["category"] = [category]
        if original := _original(kind_field, "0127",
                                 "AllergenType[AllergyIntoleranceOriginalCategory]"):
            body["_category"] = [original]
    severity = severity_field[1]
    if criticality := vocabulary.code("AllergySeverity[AllergyIntolerance.criticality]",
                                      severity):
        body["criticality"] = criticality
        if original := _original(severity_field, "0128",
                                 "AllergySeverity[AllergyIntolerance.criticality-original]"):
            body["_criticality"] = original
    body["code"] = code
    body["patient"] = {"reference": ctx.patient}
    if identified := ctx.datetime(seg[onset]):  # AL1-6 / IAM-11 (IG: onsetDateTime)
        body["onsetDateTime"] = identified
    manifestations = [{"text": f.text()} for f in seg.reps(5) if f.text()]
    if manifestations:
        reaction: Json = {"manifestation": manifestations}
        if s := vocabulary.code("AllergySeverity[AllergyIntolerance.reaction.severity]",
                                severity):
            reaction["severity"] = s
        body["reaction"] = [reaction]
    # one allergy per patient and allergen (or per IAM unique id): a resent or updated
    # record updates it; a second line for the same allergen (another reaction) is its own
    key = (("id", dt.identifier_key(ident)) if ident else
           ctx.distinct("AllergyIntolerance", (ctx.patient, *_code_key(code))))
    return ctx.add("AllergyIntolerance", key, body)


def _original(f: Field, table: str, table_name: str) -> Json | None:
    """The v2 code itself, kept beside the FHIR code it was mapped to."""
    concept = vocabulary.mapped(dt.codeable(f, table), table_name, f[1])
    if concept is None:
        return None
    return {"extension": [{"url": _ALTERNATE, "valueCodeableConcept": concept}]}


def _code_key(code: Json) -> tuple[str, ...]:
    first = (code.get("coding") or [{}])[0]
    return (first.get("system", ""), first.get("code", "") or code.get("text", ""))
