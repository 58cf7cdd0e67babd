"""PID and PD1 -> Patient, PID-18 and MRG-3 -> Account (IG segment maps PID[Patient],
PD1[Patient], PID[Account], MRG[Account])."""

from __future__ import annotations

from collections.abc import Sequence

from conduit.fhir import datatypes as dt
from conduit.fhir import vocabulary
from conduit.fhir.context import Conversion, Json, ref
from conduit.fhir.entities import organization, practitioner
from conduit.fhir.v2 import Field, Seg

# Table 0001 -> AdministrativeGender comes from the IG's AdministrativeSex map; these are the
# spellings outside table 0001 met in feeds (and the map for callers without the table).
_GENDER = {"M": "male", "F": "female", "O": "other", "A": "other", "U": "unknown",
           "N": "unknown", "MALE": "male", "FEMALE": "female"}

_MARITAL = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
_MARITAL_CODES = frozenset("ADILMPSTUW")


def patient_identifiers(ctx: Conversion, seg: Seg) -> list[Json]:
    """PID-3 (and the retired PID-2, PID-4, PID-19 SSN, PID-20 driver's licence)."""
    out: list[Json] = []
    for f in (*seg.reps(3), *seg.reps(2), *seg.reps(4)):
        if ident := ctx.identifier(f):
            out.append(ident)
    if ssn := seg[19]:
        out.append({"type": {"coding": [dt.coding("SS", "", dt.table_uri("0203"))]},
                    "system": "http://hl7.org/fhir/sid/us-ssn", "value": ssn})
    dl = seg.field(20)
    if dl[1]:  # DLN: number ^ issuing state (its authority) ^ expiry
        out.append({"type": {"coding": [dt.coding("DL", "", dt.table_uri("0203"))]},
                    "system": ctx.systems.system(dl[2], "", "", "DL", dl[1])[0],
                    "value": dl[1]})
    seen: set[str] = set()
    unique = []
    for ident in out:
        k = dt.identifier_key(ident)
        if k not in seen:
            seen.add(k)
            unique.append(ident)
    return unique


def patient_key(ctx: Conversion, idents: list[Json]) -> tuple[str, ...]:
    """The Patient's id comes from its first medical record number (else first identifier)."""
    for ident in idents:
        codes = [c.get("code") for c in ident.get("type", {}).get("coding", ())]
        if "MR" in codes:
            return (dt.identifier_key(ident),)
    if idents:
        return (dt.identifier_key(idents[0]),)
    return ctx.local_key("Patient")


def pid(ctx: Conversion, seg: Seg) -> None:
    idents = patient_identifiers(ctx, seg)
    body: Json = {}
    if idents:
        body["identifier"] = idents
    names = [n for f in seg.reps(5) if (n := dt.name(f))]
    names += [n for f in seg.reps(9) if (n := dt.name(f, use="usual"))]  # PID-9 alias
    if names:
        body["name"] = names
    telecom = [t for f in seg.reps(13) if (t := dt.contact_point(f, "home"))]
    telecom += [t for f in seg.reps(14) if (t := dt.contact_point(f, "work"))]
    telecom += [t for f in seg.reps(40) if (t := dt.contact_point(f))]  # v2.7+ PID-40
    if telecom:
        body["telecom"] = telecom
    if gender := vocabulary.code("AdministrativeSex", seg[8]) or _GENDER.get(seg[8].upper()):
        body["gender"] = gender
    if birth := dt.date(seg[7]):
        body["birthDate"] = birth
        time = ctx.datetime(seg[7])
        if time and "T" in time:  # IG: PID-7 time of birth -> patient-birthTime extension
            body["_birthDate"] = {"extension": [{
                "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                "valueDateTime": time}]}
    deceased = ctx.datetime(seg[29])
    if deceased:
        body["deceasedDateTime"] = deceased
    elif seg[30].upper() in ("Y", "N"):
        body["deceasedBoolean"] = seg[30].upper() == "Y"
    addresses = [a for f in seg.reps(11) if (a := dt.address(f))]
    _county(addresses, seg[12])
    if addresses:
        body["address"] = addresses
    marital = seg.field(16)
    if marital[1]:
        code = marital[1].upper()
        # v2 table 0002 shares its codes with v3 MaritalStatus, the binding FHIR requires
        system = _MARITAL if code in _MARITAL_CODES else dt.table_uri("0002")
        body["maritalStatus"] = {"coding": [dt.coding(marital[1], marital[2], system)]}
    # IG PID[Patient]: PID-25 birth order -> multipleBirthInteger, PID-24 only without one
    # (a birth order starts at 1: the 0 some senders write says no order; FHIR's integer is
    # 32-bit, and isdigit() would pass "²", which int() refuses)
    if (order := seg[25]).isdecimal() and 0 < int(order) < 2**31:
        body["multipleBirthInteger"] = int(order)
    elif (multiple := seg[24].upper()) in ("Y", "N"):
        body["multipleBirthBoolean"] = multiple == "Y"
    language = dt.codeable(seg.field(15))
    if language:
        _bcp47(language)
        body["communication"] = [{"language": language, "preferred": True}]
    extensions = _extensions(seg)
    if extensions:
        body["extension"] = extensions
    resource = ctx.add("Patient", patient_key(ctx, idents), body)
    ctx.patient = ref(resource)["reference"]
    _mother(ctx, seg)
    account(ctx, seg.field(18), "active")


def account(ctx: Conversion, f: Field, status: str) -> Json | None:
    """PID-18 patient account number (IG PID[Account], status active) or MRG-3 prior account
    (IG MRG[Account], status unknown) -> an Account of the current patient."""
    ident = ctx.identifier(f, "AN")
    if ident is None or ctx.patient is None:
        return None
    body: Json = {"identifier": [ident], "status": status,
                  "subject": [{"reference": ctx.patient}]}
    return ctx.add("Account", ("account", dt.identifier_key(ident)), body)


def _county(addresses: list[Json], county: str) -> None:
    """PID-12 county: the district of the one address that has none, else an address of its
    own (IG PID[Patient] rows for PID-12)."""
    if not county:
        return
    if len(addresses) == 1 and not addresses[0].get("district"):
        addresses[0]["district"] = county
    elif not any(a.get("district") == county for a in addresses):
        addresses.append({"district": county})


def _mother(ctx: Conversion, seg: Seg) -> None:
    """PID-21 mother's identifier -> a RelatedPerson with relationship MTH (IG PID map)."""
    idents = [i for f in seg.reps(21) if (i := ctx.identifier(f))]
    if not idents or ctx.patient is None:
        return
    body: Json = {"identifier": idents, "patient": {"reference": ctx.patient},
                  "relationship": [{"coding": [dt.coding(
                      "MTH", "mother", "http://terminology.hl7.org/CodeSystem/v3-RoleCode")]}]}
    ctx.add("RelatedPerson", (ctx.patient, "mother", dt.identifier_key(idents[0])), body)


def add_to_patient(ctx: Conversion, identifiers: Sequence[Json] = (),
                   names: Sequence[Json] = (), addresses: Sequence[Json] = (),
                   telecom: Sequence[Json] = ()) -> None:
    """More identifiers/names/addresses/telecom for the current Patient (GT1 self, DB1, IN2),
    skipping any it already has."""
    if ctx.patient is None:
        return
    patient = ctx.resources[ctx.patient]
    keyed = {dt.identifier_key(i) for i in patient.get("identifier", ())}
    for ident in identifiers:
        if dt.identifier_key(ident) not in keyed:
            keyed.add(dt.identifier_key(ident))
            patient.setdefault("identifier", []).append(ident)
    for key, items in (("name", names), ("address", addresses), ("telecom", telecom)):
        for item in items:
            if item not in patient.get(key, ()):
                patient.setdefault(key, []).append(item)


def db1(ctx: Conversion, seg: Seg) -> None:
    """DB1-3 disabled person identifier, when DB1-2 says the disabled person is the patient."""
    if seg[2].upper() == "PT":
        add_to_patient(ctx, identifiers=[i for f in seg.reps(3) if (i := ctx.identifier(f))])


def _bcp47(concept: Json) -> None:
    """ISO 639 language codes are BCP 47 tags already; say so (IG: PID-15 -> communication)."""
    for c in concept.get("coding", ()):
        if c.get("system") in (None, dt.table_uri("0296")) and len(c.get("code", "")) in (2, 3):
            c["system"] = "urn:ietf:bcp:47"


_RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
_ETHNICITY = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
_CDCREC = "urn:oid:2.16.840.1.113883.6.238"
_OMB = frozenset({"1002-5", "2028-9", "2054-5", "2076-8", "2106-3", "2131-1", "2135-2", "2186-5"})


def _extensions(seg: Seg) -> list[Json]:
    """Race (PID-10), ethnicity (PID-22), mother's maiden name (PID-6), birth place (PID-23).

    Race and ethnicity use the US Core extensions, as the IG does; codes shaped like CDC Race &
    Ethnicity codes (``2106-3``) become codings whatever table the sender named, the rest text.
    """
    out: list[Json] = []
    for url, n in ((_RACE, 10), (_ETHNICITY, 22)):
        parts: list[Json] = []
        texts: list[str] = []
        for f in seg.reps(n):
            code = f[1]
            if len(code) == 6 and code[4] == "-" and code[:4].isdigit():
                parts.append({"url": "ombCategory" if code in _OMB else "detailed",
                              "valueCoding": dt.coding(code, f[2], _CDCREC)})
            if f[2] or code:
                texts.append(f[2] or code)
        if texts:
            parts.append({"url": "text", "valueString": ", ".join(texts)})
            out.append({"url": url, "extension": parts})
    maiden = seg.field(6)
    if maiden[1]:
        out.append({"url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
                    "valueString": " ".join(v for v in (maiden[2], maiden[1]) if v)})
    if place := seg[23]:
        out.append({"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
                    "valueAddress": {"text": place}})
    if religion := vocabulary.mapped(dt.codeable(seg.field(17), "0006"), "Religion", seg[17]):
        out.append({"url": _EXT + "patient-religion", "valueCodeableConcept": religion})
    # PID-26 citizenship, PID-39 tribal citizenship, PID-28 nationality
    for n, name in ((26, "patient-citizenship"), (39, "patient-citizenship"),
                    (28, "patient-nationality")):
        for f in seg.reps(n):
            if c := dt.codeable(f):
                out.append({"url": _EXT + name,
                            "extension": [{"url": "code", "valueCodeableConcept": c}]})
    animal = [{"url": part, "valueCodeableConcept": c}
              for n, part in ((35, "species"), (36, "breed")) if (c := dt.codeable(seg.field(n)))]
    if animal:
        out.append({"url": _EXT + "patient-animal", "extension": animal})
    return out


_EXT = "http://hl7.org/fhir/StructureDefinition/"


def pd1(ctx: Conversion, seg: Seg) -> None:
    """PD1-3 -> managingOrganization, PD1-4 -> generalPractitioner (on the current Patient)."""
    if ctx.patient is None:
        return
    patient = ctx.resources[ctx.patient]
    org = organization(ctx, seg.field(3))
    if org:
        patient.setdefault("generalPractitioner", []).append(org)
    for f in seg.reps(4):
        gp = practitioner(ctx, f)
        if gp:
            patient.setdefault("generalPractitioner", []).append(gp)
    extensions = [{"url": _EXT + "patient-disability", "valueCodeableConcept": c}
                  for f in seg.reps(6) if (c := dt.codeable(f, "0295"))]
    extensions += [{"url": _EXT + "patient-congregation", "valueString": f[1]}
                   for f in seg.reps(14) if f[1]]  # PD1-14 place of worship (XON name)
    if extensions:
        patient.setdefault("extension", []).extend(extensions)


def mrg(ctx: Conversion, seg: Seg) -> None:
    """MRG (A40 merge, A47 identifier change...) -> the prior Patient, linked both ways.

    The IG maps MRG-1 to a Patient ``replaced-by`` the surviving one (and inactive); keyed by
    the prior identifier, it is the very resource the old number's messages created.
    """
    if ctx.patient is None:
        return
    account(ctx, seg.field(3), "unknown")  # MRG-3 prior patient account number
    idents = [i for f in (*seg.reps(1), *seg.reps(4)) if (i := ctx.identifier(f))]
    if not idents:
        return
    body: Json = {"identifier": idents, "active": False,
                  "link": [{"other": {"reference": ctx.patient}, "type": "replaced-by"}]}
    names = [n for f in seg.reps(7) if (n := dt.name(f))]
    if names:
        body["name"] = names
    prior = ctx.add("Patient", patient_key(ctx, idents), body)
    if ref(prior)["reference"] == ctx.patient:
        return  # the same identifiers: nothing was merged
    ctx.resources[ctx.patient].setdefault("link", []).append(
        {"other": ref(prior), "type": "replaces"})
