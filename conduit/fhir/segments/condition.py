"""DG1 -> Condition and the Encounter's diagnosis (IG: DG1[Condition], DG1[Encounter])."""

from __future__ import annotations

from conduit.fhir import datatypes as dt
from conduit.fhir import vocabulary
from conduit.fhir.context import Conversion, Json, ref
from conduit.fhir.entities import practitioner
from conduit.fhir.segments.allergy import _code_key
from conduit.fhir.v2 import Seg

_ASSERTED = "http://hl7.org/fhir/StructureDefinition/condition-assertedDate"
_DUE_TO = "http://hl7.org/fhir/StructureDefinition/condition-dueTo"
_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
# table 0052 diagnosis type: working diagnoses are provisional, final ones confirmed
_VERIFIED = {"W": "provisional", "A": "provisional", "F": "confirmed"}


def dg1(ctx: Conversion, seg: Seg) -> None:
    if ctx.patient is None:
        return
    code = dt.codeable(seg.field(3))
    description = seg[4]
    if code is None and not description:
        return
    if code is None:
        code = {"text": description}
    elif description and "text" not in code:
        code["text"] = description
    body: Json = {}
    if ident := ctx.entity_identifier(seg.field(20)):
        body["identifier"] = [ident]
    if seg[21].upper() == "D":  # DG1-21 action code D: the diagnosis was deleted
        body["verificationStatus"] = {"coding": [dt.coding("entered-in-error", "",
                                                           _VERIFICATION)]}
    elif status := _VERIFIED.get(seg[6].upper()):
        body["verificationStatus"] = {"coding": [dt.coding(status, "", _VERIFICATION)]}
    extensions: list[Json] = []
    if asserted := ctx.datetime(seg[19]):
        extensions.append({"url": _ASSERTED, "valueDateTime": asserted})
    if parent := ctx.entity_identifier(seg.field(22)):  # DG1-22 parent diagnosis
        cause = ctx.add("Condition", ("id", dt.identifier_key(parent)),
                        {"identifier": [parent], "subject": {"reference": ctx.patient},
                         "code": {"text": "parent diagnosis"}})
        extensions.append({"url": _DUE_TO, "valueReference": ref(cause)})
    if extensions:
        body["extension"] = extensions
    categories = [{"coding": [dt.coding("encounter-diagnosis", "Encounter Diagnosis",
                                        _CATEGORY)]}]
    if kind := dt.code_concept(seg[6], "0052"):
        categories.append(kind)
    body["category"] = categories
    body["code"] = code
    body["subject"] = {"reference": ctx.patient}
    if ctx.encounter:
        body["encounter"] = {"reference": ctx.encounter}
    if onset := ctx.datetime(seg[5]):
        body["onsetDateTime"] = onset
    if recorded := ctx.datetime(seg[19]):
        body["recordedDate"] = recorded
    if seg.reps(16) and (who := practitioner(ctx, seg.reps(16)[0])):
        body["asserter"] = who
    # a code given twice (admitting, then final) is two diagnoses, not one keeping the first
    key = (("id", dt.identifier_key(ident)) if ident else
           ctx.distinct("Condition", (ctx.patient, ctx.encounter or "", *_code_key(code))))
    condition = ctx.add_ref("Condition", key, body)
    if ctx.encounter:  # IG DG1[Encounter]: the encounter's diagnosis, its use and rank
        diagnosis: Json = {"condition": condition}
        if use := vocabulary.coding("DiagnosisType", seg[6]):
            diagnosis["use"] = {"coding": [use]}
        if seg[15].isdigit() and int(seg[15]) > 0:
            diagnosis["rank"] = int(seg[15])
        ctx.resources[ctx.encounter].setdefault("diagnosis", []).append(diagnosis)
