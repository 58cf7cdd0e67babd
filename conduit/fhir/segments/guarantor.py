"""GT1 -> the Patient's identifiers (when the guarantor is the patient) or a RelatedPerson.

The IG has no GT1 map yet ("under construction"; its ADT messages map GT1 to nothing). A
guarantor who is the patient (GT1-11 relationship ``SEL``) adds its guarantor number and SSN
to the Patient's identifiers, but not GT1's name, address or phones: the IG maps Patient.name,
address and telecom from PID alone, and a guarantor's (billing) address that differs from
PID-11 would become a second home of the patient. Anyone else is a RelatedPerson.
"""

from __future__ import annotations

from conduit.fhir import datatypes as dt
from conduit.fhir.context import Conversion, Json
from conduit.fhir.segments.patient import _GENDER, add_to_patient
from conduit.fhir.v2 import Seg


def gt1(ctx: Conversion, seg: Seg) -> None:
    if ctx.patient is None:
        return
    idents = [i for f in seg.reps(2) if (i := ctx.identifier(f))]
    if seg[12]:
        idents.append({"type": {"coding": [dt.coding("SB", "", dt.table_uri("0203"))]},
                       "system": "http://hl7.org/fhir/sid/us-ssn", "value": seg[12]})
    relationship = seg.field(11)
    if relationship[1].upper() == "SEL":
        add_to_patient(ctx, idents)
        return
    names = [n for f in seg.reps(3) if (n := dt.name(f))]
    addresses = [a for f in seg.reps(5) if (a := dt.address(f))]
    telecom = [t for f in seg.reps(6) if (t := dt.contact_point(f, "home"))]
    telecom += [t for f in seg.reps(7) if (t := dt.contact_point(f, "work"))]
    if not names and not idents:
        return
    body: Json = {"patient": {"reference": ctx.patient}}
    for key, items in (("identifier", idents), ("name", names), ("address", addresses),
                       ("telecom", telecom)):
        if items:
            body[key] = items
    rel = dt.codeable(relationship, "0063")
    body["relationship"] = [c for c in (rel, dt.code_concept("GUAR", "0131", "Guarantor"))
                            if c]
    if gender := _GENDER.get(seg[9].upper()):
        body["gender"] = gender
    if birth := dt.date(seg[8]):
        body["birthDate"] = birth
    key = dt.identifier_key(idents[0]) if idents else seg.field(3).raw
    ctx.add("RelatedPerson", (ctx.patient, "guarantor", key), body)
