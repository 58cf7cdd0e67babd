"""OBX -> Observation (IG: OBX[Observation]), and NTE -> the note of what it follows.

Inside an MDM, OBX carries the document's text: :mod:`.document` takes it instead.
"""

from __future__ import annotations

import re

from conduit.fhir import attachment, vocabulary
from conduit.fhir import datatypes as dt
from conduit.fhir.codesystems import system_uri
from conduit.fhir.context import Conversion, Json, ref
from conduit.fhir.entities import organization, organization_of, practitioner, practitioner_role
from conduit.fhir.segments import document
from conduit.fhir.v2 import Field, Seg

# table 0085 -> observation-status (IG ConceptMap ObservationResultStatus). Microsoft's
# converter writes "unknown" for S (partial) and I (pending); the IG says preliminary and
# registered, and so do we.
_STATUS = {"C": "corrected", "D": "entered-in-error", "F": "final", "I": "registered",
           "N": "cancelled", "P": "preliminary", "R": "preliminary", "S": "preliminary",
           "U": "final", "W": "entered-in-error", "X": "cancelled", "A": "amended"}
_TEXT_TYPES = frozenset({"ST", "TX", "FT"})
_CODED_TYPES = frozenset({"CE", "CWE", "CNE", "CF", "CD"})
_ATTACHMENT_TYPES = frozenset({"ED", "RP"})
_RANGE = re.compile(r"^\s*([<>]=?)?\s*(-?\d+(?:\.\d+)?)\s*(?:-\s*(-?\d+(?:\.\d+)?))?\s*$")


def obx(ctx: Conversion, seg: Seg) -> None:
    if ctx.document is not None:
        document.content(ctx, seg)
        return
    kind = seg[2].upper()
    values = seg.reps(5)
    # OBX-11 by the IG's map, else the statuses it leaves out (I, R, S, U...)
    body: Json = {"status": vocabulary.code("ObservationResultStatusCodesInterpretation",
                                            seg[11]) or _STATUS.get(seg[11].upper(), "unknown")}
    if ctx.order is not None:
        body["basedOn"] = [ref(ctx.order)]
    if ctx.immunization is not None:
        body["partOf"] = [ref(ctx.immunization)]
    body["code"] = dt.codeable(seg.field(3)) or {"text": "unknown"}  # code is required
    if ctx.patient:
        body["subject"] = {"reference": ctx.patient}
    if ctx.encounter:
        body["encounter"] = {"reference": ctx.encounter}
    effective = ctx.datetime(seg[14])
    if not effective and ctx.report is not None:
        effective = ctx.report.get("effectiveDateTime")
    if effective:
        body["effectiveDateTime"] = effective
    if performers := _performers(ctx, seg):
        body["performer"] = performers
    unit = seg.field(6)
    if kind in _TEXT_TYPES:
        text = "\n".join(v.text() for v in values)
        if text.strip():
            body["valueString"] = text
    elif kind in _ATTACHMENT_TYPES:
        # every repetition is one document: one extension each (components have no Attachment)
        read = attachment.from_ed if kind == "ED" else attachment.from_rp
        found = [{"url": attachment.VALUE_ATTACHMENT, "valueAttachment": a}
                 for v in values if (a := read(v))]
        if found:
            body["extension"] = found
    elif len(values) == 1:
        body.update(value(ctx, kind, values[0], unit))
    elif values:
        # several repetitions of one observation: one component each (same code), as
        # Microsoft's converter does; FHIR has no repeating value[x]
        parts = [part for v in values if (part := value(ctx, kind, v, unit))]
        if parts:
            body["component"] = [{"code": body["code"], **part} for part in parts]
    # OBX-8 by the IG's InterpretationCodes map (v3 codes); a code it does not map stays a
    # table 0078 code rather than being passed off as a v3 one
    interpretation = [{"coding": [vocabulary.coding("InterpretationCodes", f[1]) or
                                  dt.coding(f[1], f[2], dt.table_uri("0078"))]}
                      for f in seg.reps(8) if f[1]]
    if interpretation:
        body["interpretation"] = interpretation
    if rng := reference_range(seg[7], unit):
        body["referenceRange"] = [rng]
    if method := dt.codeable(seg.field(17)):
        body["method"] = method
    if site := dt.codeable(seg.field(20)):
        body["bodySite"] = site
    _more_elements(ctx, seg, body)
    key = _key(ctx, seg)
    resource = ctx.add("Observation", key, body)
    ctx.observation = resource
    if ctx.report is not None:
        ctx.report.setdefault("result", []).append(ref(resource))


def _key(ctx: Conversion, seg: Seg) -> tuple[str, ...]:
    """Results of a known order are keyed by it plus OBX set id, code and sub-id; senders
    repeat all three (an empty set id, the same code twice), so each further OBX with the same
    key is its own Observation (:meth:`Conversion.distinct`)."""
    anchor = ctx.report or ctx.order or ctx.immunization
    if anchor is not None and anchor.get("identifier"):
        return ctx.distinct("Observation", (anchor["id"], seg[1], seg.field(3)[1], seg[4]))
    return ctx.local_key("Observation")


def value(ctx: Conversion, kind: str, f: Field, unit: Field) -> Json:
    """One OBX-5 repetition as ``value[x]`` by OBX-2's data type; {} when it is empty/unusable."""
    if kind == "NM":
        q = quantity(f[1], unit)
        return {"valueQuantity": q} if q else _string(f.text())
    if kind == "SN":
        return structured_numeric(f, unit) or _string(" ".join(
            v for v in (f[1], f[2], f[3], f[4]) if v))
    if kind in _CODED_TYPES:
        c = dt.codeable(f)
        return {"valueCodeableConcept": c} if c else {}
    if kind == "DR":  # date range: start ^ end
        p = ctx.period(f[1], f[2])
        return {"valuePeriod": p} if p else {}
    if kind in ("DT", "TS", "DTM"):
        when = ctx.datetime(f[1])
        return {"valueDateTime": when} if when else _string(f[1])
    if kind == "TM":
        t = re.fullmatch(r"(\d{2})(\d{2})?(\d{2})?(?:\.\d+)?(?:[+-]\d{4})?", f[1])
        if t:
            return {"valueTime": f"{t[1]}:{t[2] or '00'}:{t[3] or '00'}"}
        return _string(f[1])
    if kind in ("ID", "IS"):
        return {"valueCodeableConcept": {"coding": [dt.coding(f[1])]}} if f[1] else {}
    if kind in _ATTACHMENT_TYPES:
        return {}  # no valueAttachment in R4: obx() puts them in the IG's extension
    return _string(" ".join(f[i] for i in range(1, 10) if f[i]))


def _string(text: str) -> Json:
    return {"valueString": text} if text and text.strip() else {}


def quantity(number: str, unit: Field | None, comparator: str = "") -> Json | None:
    """A number and an OBX-6 unit (CWE) -> Quantity; UCUM units carry system and code."""
    v = dt.number(number)
    if v is None:
        return None
    q: Json = {"value": v}
    if comparator in ("<", "<=", ">=", ">"):
        q["comparator"] = comparator
    if unit is None:
        return q
    code, text, system = unit[1], unit[2], unit[3]
    if code or text:
        q["unit"] = text or code
    if code and system.upper() == "UCUM":
        # only a unit the sender says is UCUM gets a system and code (qty-3): ISO+ and local
        # spellings ("beats/min") are kept as the human-readable unit
        q["system"] = "http://unitsofmeasure.org"
        q["code"] = code
    return q


def structured_numeric(f: Field, unit: Field) -> Json | None:
    """SN (comparator ^ num1 ^ separator ^ num2) -> valueQuantity, valueRange or valueRatio."""
    comparator, n1, sep, n2 = f[1], f[2], f[3], f[4]
    if sep in (":", "/") and n2:
        a, b = quantity(n1, unit), quantity(n2, unit)  # IG: OBX-6 on both (SN[Ratio])
        if a and b:
            return {"valueRatio": {"numerator": a, "denominator": b}}
        return None
    if sep in ("-", "+") and n2:
        low, high = quantity(n1, unit), quantity(n2, unit)
        if low and high:
            return {"valueRange": {"low": low, "high": high}}
        return None
    if comparator not in ("", "=", "<", "<=", ">=", ">"):
        return None
    q = quantity(n1, unit, comparator)
    return {"valueQuantity": q} if q else None


def reference_range(text: str, unit: Field) -> Json | None:
    """OBX-7 ``3.5-5.0``, ``<10``, ``>=2`` -> low/high, the original always kept as text."""
    if not text:
        return None
    out: Json = {}
    m = _RANGE.match(text)
    if m:
        op, a, b = m.groups()
        if b is not None and not op:
            low, high = quantity(a, unit), quantity(b, unit)
            if low and high:
                out.update(low=low, high=high)
        elif op in ("<", "<="):
            if high := quantity(a, unit):
                out["high"] = high
        elif op in (">", ">=") and (low := quantity(a, unit)):
            out["low"] = low
    out["text"] = text
    return out


def nte(ctx: Conversion, seg: Seg) -> None:
    """NTE-3 -> note of the Observation/ServiceRequest it follows (Annotation.text)."""
    text = "\n".join(f.text() for f in seg.reps(3))
    if not text.strip():
        return
    target = ctx.observation or ctx.order
    if target is not None:
        note: Json = {"text": text}
        if author := practitioner(ctx, seg.field(5)):  # NTE-5 entered by
            note["authorReference"] = author
        if when := ctx.datetime(seg[6]):  # NTE-6 entered date/time
            note["time"] = when
        target.setdefault("note", []).append(note)


_PERFORMER_ROLE = "http://terminology.hl7.org/CodeSystem/v2-0912"
_SUB_ID = "http://hl7.org/fhir/StructureDefinition/observation-v2-subid"
_NATURE = "http://hl7.org/fhir/StructureDefinition/observation-nature-of-abnormal-test"
_STRUCTURE = "http://hl7.org/fhir/StructureDefinition/observation-structure-type"
_ANALYSIS = "http://hl7.org/fhir/StructureDefinition/observation-analysis-date-time"
_ALTERNATE = "http://hl7.org/fhir/StructureDefinition/alternate-codes"
_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"


def _performers(ctx: Conversion, seg: Seg) -> list[Json]:
    """OBX-16 responsible observer (a PractitionerRole, role RO of table 0912), OBX-15
    producer, OBX-23 performing organization with its OBX-24 address and OBX-25 medical
    director (a PractitionerRole, role MDIR) (IG OBX[Observation])."""
    out = [r for f in seg.reps(16) if (r := practitioner_role(
        ctx, practitioner(ctx, f), code={"coding": [dt.coding("RO", "Responsible Observer",
                                                              _PERFORMER_ROLE)]}))]
    producer = seg.field(15)
    if org := organization_of(ctx, producer[2], producer[1], system_uri(producer[3])):
        out.append(org)
    lab = organization(ctx, seg.field(23))
    if lab is not None:
        resource = ctx.resources[lab["reference"]]
        for address in (a for f in seg.reps(24) if (a := dt.address(f))):
            if address not in resource.get("address", ()):
                resource.setdefault("address", []).append(address)
    director = practitioner(ctx, seg.field(25))
    if director is not None:
        lab = practitioner_role(ctx, director, lab, {"coding": [dt.coding(
            "MDIR", "Medical Director", _PERFORMER_ROLE)]})
    if lab is not None:
        out.append(lab)
    return out


def _more_elements(ctx: Conversion, seg: Seg, body: Json) -> None:
    """OBX fields besides the value (IG OBX[Observation]): sub-id (OBX-4), nature of abnormal
    test (OBX-10), the v2 status beside X (OBX-11), not asked (N), equipment (OBX-18),
    analysis time (OBX-19), instance id (OBX-21), observation type (OBX-29), sub-type
    (OBX-30), specimen (OBX-33)."""
    extensions: list[Json] = [{"url": _NATURE, "valueCodeableConcept": c}
                              for f in seg.reps(10) if (c := dt.codeable(f, "0080"))]
    if sub_id := seg.field(4).text():  # OBX-4 sub-id (IG OG[Extension-Subidentifier])
        extensions.append({"url": _SUB_ID, "extension": [
            {"url": "original-sub-identifier", "valueString": sub_id}]})
    if seg[19] and (analysed := ctx.datetime(seg[19])):  # OBX-19 date/time of the analysis
        extensions.append({"url": _ANALYSIS, "valueDateTime": analysed})
    if seg[30]:  # OBX-30 observation sub-type: table 0937 (0936 is OBX-29's)
        extensions.append({"url": _STRUCTURE, "valueCodeableConcept": {"coding": [
            dt.coding(seg[30], "", dt.table_uri("0937"))]}})
    if extensions:
        body.setdefault("extension", []).extend(extensions)
    status = seg[11].upper()
    if status == "X":  # cannot be obtained: the v2 code kept beside "cancelled"
        body["_status"] = {"extension": [{"url": _ALTERNATE, "valueCodeableConcept": {
            "coding": [dt.coding("X", "", dt.table_uri("0085"))]}}]}
    elif status == "N" and not any(k.startswith("value") for k in body):
        body["dataAbsentReason"] = {"coding": [
            dt.coding("N", "Not asked", dt.table_uri("0085")),
            dt.coding("not-asked", "Not Asked", _ABSENT)]}
    if device := ctx.entity_identifier(seg.field(18)):  # OBX-18 equipment instance id
        body["device"] = ctx.add_ref("Device", ("equipment", dt.identifier_key(device)),
                                     {"identifier": [device]})
    if instance := ctx.entity_identifier(seg.field(21), "FILL"):
        body["identifier"] = [instance]
    if kind := seg[29]:
        body["category"] = [{"coding": [dt.coding(kind, "", dt.table_uri("0936"))]}]
    specimens = [sp for f in seg.reps(33) if (sp := _specimen(ctx, f))]
    if specimens:
        body["specimen"] = specimens[0]  # R4 has one; OBX-33 rarely repeats


def _specimen(ctx: Conversion, f: Field) -> Json | None:
    """OBX-33 (EIP placer & filler specimen ids) -> the Specimen known by them (the same
    resource an SPM with those ids makes)."""
    idents = [i for n, code in ((1, "PLAC"), (2, "FILL"))
              if (i := ctx.entity_identifier(f.part(n), code))]
    if not idents or ctx.patient is None:
        return None
    return ctx.add_ref("Specimen", ("specimen", dt.identifier_key(idents[0])),
                       {"identifier": idents, "subject": {"reference": ctx.patient}})
