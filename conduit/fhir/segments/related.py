"""NK1 -> RelatedPerson (IG segment map NK1[RelatedPerson])."""

from __future__ import annotations

from conduit.fhir import datatypes as dt
from conduit.fhir.context import Conversion, Json
from conduit.fhir.segments.patient import _GENDER
from conduit.fhir.v2 import Seg


def nk1(ctx: Conversion, seg: Seg) -> None:
    if ctx.patient is None:
        return  # RelatedPerson.patient is required; an NK1 without PID relates to no one
    body: Json = {"patient": {"reference": ctx.patient}}
    names = [n for f in (*seg.reps(2), *seg.reps(30)) if (n := dt.name(f))]
    if not names and not seg[13]:
        return
    if names:
        body["name"] = names
    relationship = [c for f in seg.reps(3) if (c := dt.codeable(f, "0063"))]
    relationship += [c for f in seg.reps(7) if (c := dt.codeable(f, "0131"))]
    if relationship:
        body["relationship"] = relationship
    telecom = [t for f in seg.reps(5) if (t := dt.contact_point(f, "home"))]
    telecom += [t for f in (*seg.reps(6), *seg.reps(31)) if (t := dt.contact_point(f, "work"))]
    telecom += [t for f in (*seg.reps(40), *seg.reps(41)) if (t := dt.contact_point(f))]
    # NK1-12 employee number, NK1-33 identifiers, NK1-37 social security number
    idents = [i for f in (*seg.reps(12), *seg.reps(33)) if (i := ctx.identifier(f))]
    if ssn := seg[37]:
        idents.append({"type": {"coding": [dt.coding("SS", "", dt.table_uri("0203"))]},
                       "system": "http://hl7.org/fhir/sid/us-ssn", "value": ssn})
    if idents:
        body["identifier"] = idents
    if telecom:
        body["telecom"] = telecom
    addresses = [a for f in (*seg.reps(4), *seg.reps(32)) if (a := dt.address(f))]
    if addresses:
        body["address"] = addresses
    if gender := _GENDER.get(seg[15].upper()):
        body["gender"] = gender
    if birth := dt.date(seg[16]):
        body["birthDate"] = birth
    if p := ctx.period(seg[8], seg[9]):
        body["period"] = p
    if lang := dt.codeable(seg.field(20)):
        body["communication"] = [{"language": lang}]
    names_key = names[0].get("family", "") + "|" + " ".join(names[0].get("given", ())) \
        if names else ""
    ctx.add("RelatedPerson", (ctx.patient, seg[1], names_key), body)
