"""SPM -> Specimen (IG: SPM[Specimen]), referenced by the order or report it belongs to.

In results (ORU/OUL) SPM follows its OBR and OBX; in orders (OML) it precedes or follows the
ORC/OBR. The Specimen is linked to the current DiagnosticReport and ServiceRequest (their
``specimen``), and to the patient. Vocabulary comes from the IG's tables (SpecimenType,
SpecimenCondition...), which keep the v2 tables' codes.
"""

from __future__ import annotations

from conduit.fhir import datatypes as dt
from conduit.fhir import vocabulary
from conduit.fhir.context import Conversion, Json, ref
from conduit.fhir.v2 import Field, Seg


def spm(ctx: Conversion, seg: Seg) -> None:
    if ctx.patient is None:
        return  # a specimen of nobody named is not sent as if it were the patient's
    body: Json = {}
    idents = _eip_identifiers(ctx, seg.field(2))
    idents += [i for f in seg.reps(31) if (i := ctx.identifier(f))]
    idents += [i for f in seg.reps(32) if (i := ctx.entity_identifier(f, "SHIP"))]
    if idents:
        body["identifier"] = idents
    if accession := ctx.identifier(seg.field(30), "ACSN"):
        body["accessionIdentifier"] = accession
    if status := vocabulary.code("YesNoIndicator[AvailabilityStatus]", seg[20]):
        body["status"] = status
    if kind := _concept(seg.field(4), "SpecimenType", "0487"):
        body["type"] = kind
    body["subject"] = {"reference": ctx.patient}
    if received := ctx.datetime(seg[18]):
        body["receivedTime"] = received
    parents = [ref(p) for f in seg.reps(3) if (p := _parent(ctx, f))]
    if parents:
        body["parent"] = parents
    if ctx.order is not None:
        body["request"] = [ref(ctx.order)]
    collection = _collection(ctx, seg)
    if collection:
        body["collection"] = collection
    container: Json = {}
    if additive := _concept(seg.field(6), "AdditivePreservative", "0371"):
        container["additiveCodeableConcept"] = additive
    if kind := dt.codeable(seg.field(27), "0785"):
        container["type"] = kind
    if container:
        body["container"] = [container]
    conditions = [c for f in seg.reps(24) if (c := _concept(f, "SpecimenCondition", "0493"))]
    if conditions:
        body["condition"] = conditions
    notes = [{"text": t} for f in seg.reps(14) if (t := f.text())]
    if notes:
        body["note"] = notes
    key = (("specimen", dt.identifier_key(idents[0])) if idents
           else ctx.local_key("Specimen"))
    specimen = ctx.add_ref("Specimen", key, body)
    for owner in (ctx.report, ctx.order):
        if owner is not None and specimen not in owner.get("specimen", ()):
            owner.setdefault("specimen", []).append(specimen)


def _concept(f: Field, table_name: str, table: str) -> Json | None:
    return vocabulary.mapped(dt.codeable(f, table), table_name, f[1])


def _eip_identifiers(ctx: Conversion, f: Field) -> list[Json]:
    """EIP (placer EI & ... ^ filler EI & ...) -> placer (PLAC) and filler (FILL) ids."""
    return [i for n, code in ((1, "PLAC"), (2, "FILL"))
            if (i := ctx.entity_identifier(f.part(n), code))]


def _parent(ctx: Conversion, f: Field) -> Json | None:
    """SPM-3 parent specimen id -> a Specimen known by its identifiers (IG: parent)."""
    idents = _eip_identifiers(ctx, f)
    if not idents or ctx.patient is None:
        return None
    return ctx.add("Specimen", ("specimen", dt.identifier_key(idents[0])),
                   {"identifier": idents, "subject": {"reference": ctx.patient}})


def _collection(ctx: Conversion, seg: Seg) -> Json:
    out: Json = {}
    when = seg.field(17)  # DR: range start & end (subcomponents of component 1 up to v2.4)
    start, end = ctx.datetime(when[1]), ctx.datetime(when[2])
    if start and end:
        out["collectedPeriod"] = {"start": start, "end": end}
    elif start:
        out["collectedDateTime"] = start
    amount = seg.field(12)  # CQ: quantity ^ units (CWE, its parts as subcomponents)
    if (value := dt.number(amount[1])) is not None:
        quantity: Json = {"value": value}
        unit = amount.part(2)
        if unit[1]:
            quantity["unit"] = unit[2] or unit[1]
            if unit[3].upper() == "UCUM":
                quantity.update(system="http://unitsofmeasure.org", code=unit[1])
        out["quantity"] = quantity
    if method := _concept(seg.field(7), "SpecimenCollectionMethod", "0488"):
        out["method"] = method
    if site := dt.codeable(seg.field(8), "0163"):
        out["bodySite"] = site
    return out
