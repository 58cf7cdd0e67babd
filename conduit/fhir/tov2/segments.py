"""The v2 segments written from FHIR resources: MSH, EVN, PID, PV1, OBR, OBX, NTE."""

from __future__ import annotations

import codecs
from decimal import Decimal
from typing import Any

from conduit.fhir.attachment import VALUE_ATTACHMENT_URLS
from conduit.fhir.tov2 import datatypes as dt
from conduit.fhir.tov2.patients import ConversionError
from conduit.fhir.tov2.resolve import Index
from conduit.fhir.tov2.text import Raw, comp, reps, segment, sub, value
from conduit.hl7.codec import charset_to_codec

Json = dict[str, Any]

_GENDER = {"male": "M", "female": "F", "other": "O", "unknown": "U"}
_CLASS = {"EMER": "E", "IMP": "I", "ACUTE": "I", "NONAC": "I", "AMB": "O", "PRENC": "P",
          "SS": "O", "HH": "O", "VR": "O", "OBSENC": "O", "FLD": "O"}
_PARTICIPANTS = {"ATND": 7, "REF": 8, "CON": 9, "ADM": 17}
_PLACE = {"bd": 3, "ro": 2, "wa": 1, "lvl": 8, "bu": 7, "si": 4}
_RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
_ETHNICITY = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"


def msh(*, sending: tuple[str, str], receiving: tuple[str, str], when: str, kind: str,
        control_id: str, version: str) -> str:
    fields = [value(sending[0]), value(sending[1]), value(receiving[0]), value(receiving[1]),
              when, "", kind, value(control_id), "P", version]
    return "MSH|^~\\&|" + "|".join(fields)


# table 0211 names, each the first for its codec (ASCII is left out: what it cannot hold is
# written as \\Xhh\\ escapes of UTF-8 bytes, so the message is declared UTF-8)
_CHARSETS = ("UNICODE UTF-8", "8859/1", "8859/2", "8859/3", "8859/4", "8859/5", "8859/6",
             "8859/7", "8859/8", "8859/9", "8859/15", "GB 18030-2000", "KS X 1001", "BIG-5",
             "ISO IR87", "ISO IR159", "ISO IR14")


def charset_name(codec: str, version: str) -> str:
    """The MSH-18 value for text written in ``codec``: its table 0211 name, Unicode when the
    codec has none (table 0211 has ``UNICODE UTF-8`` from v2.5, only ``UNICODE`` before)."""
    try:
        wanted = codecs.lookup(codec).name
    except LookupError:
        wanted = "utf-8"
    name = next((n for n in _CHARSETS if codecs.lookup(charset_to_codec(n) or "utf-8").name
                 == wanted), "UNICODE UTF-8")
    number = tuple(int(p) for p in version.split(".") if p.isdigit())
    return "UNICODE" if name == "UNICODE UTF-8" and number < (2, 5) else name


def with_charset(msh_text: str, version: str, codec: str = "utf-8") -> str:
    """The MSH with MSH-18 naming the character set the text is written in."""
    fields = msh_text.split("|")
    fields += [""] * (18 - len(fields))
    fields[17] = charset_name(codec, version)
    return "|".join(fields)


def bhs(*, sending: tuple[str, str], receiving: tuple[str, str], when: str,
        control_id: str) -> str:
    """The batch header: sender, receiver, creation time (BHS-7), batch control id (BHS-11)."""
    fields = [value(sending[0]), value(sending[1]), value(receiving[0]), value(receiving[1]),
              when, "", "", "", value(control_id)]
    return "BHS|^~\\&|" + "|".join(fields)


def evn(trigger: str, when: str) -> str:
    return segment("EVN", {1: trigger, 2: when})


def practitioner(index: Index, reference: Json | None) -> Raw:
    """A Reference(Practitioner) -> XCN, from the resource when the Bundle has it."""
    if not reference:
        return Raw("")
    found = index.resolve(reference)
    if found is not None and found.get("resourceType") in ("Practitioner", "RelatedPerson"):
        return dt.xcn((found.get("identifier") or [None])[0], (found.get("name") or [None])[0])
    if reference.get("identifier") or reference.get("display"):
        return dt.xcn(reference.get("identifier"), {"text": reference.get("display")})
    return Raw("")


def pid(patient: Json, version: str = "2.5.1") -> str:
    f: dict[int, str] = {1: "1"}
    idents = [dt.cx(i) for i in patient.get("identifier", ())]
    # PID-3 is required: a patient known only by its FHIR id is sent with that
    f[3] = reps(idents) or dt.cx({"value": patient.get("id", "unknown"), "type": {
        "coding": [{"code": "PI"}]}})
    f[5] = reps(dt.name(n) for n in patient.get("name", ())) or '""'
    birth = patient.get("birthDate")
    for ext in (patient.get("_birthDate") or {}).get("extension", ()):
        if ext.get("url", "").endswith("patient-birthTime"):
            birth = ext.get("valueDateTime") or birth
    f[7] = dt.dtm(birth)
    f[8] = _GENDER.get(patient.get("gender", ""), "")
    f[10] = reps(_ombs(patient, _RACE))
    f[22] = reps(_ombs(patient, _ETHNICITY))
    f[11] = reps(dt.address(a) for a in patient.get("address", ()))
    telecom = patient.get("telecom", ())
    f[13] = reps(dt.contact(t, version) for t in telecom if t.get("use") != "work")
    f[14] = reps(dt.contact(t, version) for t in telecom if t.get("use") == "work")
    language = next((c.get("language") for c in patient.get("communication", ())), None)
    f[15] = dt.concept(language)
    f[16] = dt.concept(patient.get("maritalStatus"))
    if "multipleBirthInteger" in patient:
        f[24], f[25] = "Y", str(patient["multipleBirthInteger"])
    elif "multipleBirthBoolean" in patient:
        f[24] = "Y" if patient["multipleBirthBoolean"] else "N"
    if patient.get("deceasedDateTime"):
        f[29], f[30] = dt.dtm(patient["deceasedDateTime"]), "Y"
    elif "deceasedBoolean" in patient:
        f[30] = "Y" if patient["deceasedBoolean"] else "N"
    return segment("PID", f)


def _ombs(patient: Json, url: str) -> list[str]:
    out: list[str] = []
    for ext in patient.get("extension", ()):
        if ext.get("url") == url:
            for part in ext.get("extension", ()):
                if part.get("url") in ("ombCategory", "detailed") and part.get("valueCoding"):
                    c = part["valueCoding"]
                    out.append(comp(c.get("code"), c.get("display"), "CDCREC"))
    return out


def place(index: Index, reference: Json | None) -> Raw:
    """Reference(Location) -> PL, filling point of care/room/bed/... from the partOf chain."""
    parts = [""] * 9
    loc = index.resolve(reference)
    seen = 0
    while loc is not None and seen < 8:
        kind = next((c.get("code") for c in (loc.get("physicalType") or {}).get("coding", ())),
                    "")
        slot = _PLACE.get(kind, 1)
        if not parts[slot - 1]:
            parts[slot - 1] = loc.get("name", "")
        loc = index.resolve(loc.get("partOf"))
        seen += 1
    if not any(parts) and reference and reference.get("display"):
        parts[0] = reference["display"]
    return comp(*parts[:3], sub(parts[3]) if parts[3] else "", *parts[4:])


def pv1(encounter: Json, index: Index) -> str:
    f: dict[int, str] = {1: "1"}
    code = (encounter.get("class") or {}).get("code", "")
    f[2] = _CLASS.get(code, "U")  # PV1-2 is required; table 0004 has U (unknown)
    locations = encounter.get("location", ())
    current = next((loc for loc in locations if loc.get("status") == "active"),
                   locations[0] if locations else None)
    if current:
        f[3] = place(index, current.get("location"))
    for cc in encounter.get("type", ()):
        for c in cc.get("coding", ()):
            if c.get("system", "").endswith("v2-0007"):
                f[4] = value(c.get("code"))
    for p in encounter.get("participant", ()):
        codes = [c.get("code") for t in p.get("type", ()) for c in t.get("coding", ())]
        for role in codes:
            n = _PARTICIPANTS.get(role or "")
            if n and n not in f:
                f[n] = practitioner(index, p.get("individual"))
    service = encounter.get("serviceType")
    if service:
        f[10] = value(next((c.get("code") for c in service.get("coding", ())), ""))
    if encounter.get("identifier"):
        f[19] = dt.cx(encounter["identifier"][0])
    stay = encounter.get("hospitalization") or {}
    f[36] = value(dt.code_of(stay.get("dischargeDisposition")))
    period = encounter.get("period") or {}
    f[44], f[45] = dt.dtm(period.get("start")), dt.dtm(period.get("end"))
    return segment("PV1", f)


# -- results ------------------------------------------------------------------------------------

_REPORT_STATUS = {"registered": "O", "partial": "P", "preliminary": "P", "final": "F",
                  "amended": "C", "corrected": "C", "appended": "C", "cancelled": "X",
                  "entered-in-error": "X"}
_OBS_STATUS = {"registered": "I", "preliminary": "P", "final": "F", "amended": "C",
               "corrected": "C", "cancelled": "X", "entered-in-error": "W"}


def obr(set_id: int, report: Json | None, code: Json | None, index: Index) -> str:
    f: dict[int, str] = {1: str(set_id)}
    report = report or {}
    placer = filler = None
    for ident in report.get("identifier", ()):
        kind = next((c.get("code") for c in (ident.get("type") or {}).get("coding", ())), "")
        if kind == "PLAC" and placer is None:
            placer = ident
        elif filler is None and kind != "PLAC":
            filler = ident
    for based in report.get("basedOn", ()):
        request = index.resolve(based)
        if request and placer is None:
            placer = next(iter(request.get("identifier", ())), None)
    f[2] = _ei(placer)
    f[3] = _ei(filler)
    f[4] = dt.concept(code) or comp("", "unknown")  # OBR-4 is required
    period = report.get("effectivePeriod") or {}
    f[7] = dt.dtm(report.get("effectiveDateTime") or period.get("start"))
    f[8] = dt.dtm(period.get("end"))
    f[22] = dt.dtm(report.get("issued"))
    f[25] = _REPORT_STATUS.get(report.get("status", ""), "")
    return segment("OBR", f)


def _ei(ident: Json | None) -> Raw:
    if not ident or not ident.get("value"):
        return Raw("")
    system = ident.get("system")
    if system and system.startswith("urn:oid:"):
        return comp(ident["value"], "", system[8:], "ISO")
    return comp(ident["value"], (ident.get("assigner") or {}).get("display"),
                system or "", "URI" if system else "")


def obx(set_id: int, obs: Json, index: Index, *, version: str, sub_id: str = "",
        code: Json | None = None) -> str:
    """One Observation (or one of its components, given as ``obs`` with ``code``)."""
    kind, text, unit = observation_value(obs, version)
    f: dict[int, str] = {1: str(set_id), 2: kind or "ST",  # OBX-2 is required before 2.5
                         3: dt.concept(code or obs.get("code")) or comp("", "unknown")}
    f[4] = value(sub_id)
    f[5] = text
    f[6] = unit
    ranges = obs.get("referenceRange", ())
    if ranges:
        f[7] = value(_range_text(ranges[0]))
    f[8] = reps(value(dt.code_of(i)) for i in obs.get("interpretation", ()))  # IS
    # OBX-11 is required: an unknown status is sent as preliminary, the weaker claim
    f[11] = _OBS_STATUS.get(obs.get("status", ""), "P")
    period = obs.get("effectivePeriod") or {}
    f[14] = dt.dtm(obs.get("effectiveDateTime") or obs.get("effectiveInstant")
                   or period.get("start"))
    f[16] = reps(practitioner(index, p) for p in obs.get("performer", ())
                 if (p.get("reference") or "").startswith("Practitioner"))
    f[17] = dt.concept(obs.get("method"))
    return segment("OBX", f)


def _number(v: Any) -> str:
    """A FHIR decimal as written: a Decimal keeps its digits (``7.20``), fixed-point (NM has no
    exponent); a float (parsed elsewhere) gives its shortest repr."""
    if isinstance(v, float):
        v = Decimal(repr(v))
    if isinstance(v, Decimal):
        return format(v, "f")
    return str(v) if v is not None else ""


def observation_value(obs: Json, version: str) -> tuple[str, str, str]:
    """value[x] -> (OBX-2 type, OBX-5 text, OBX-6 units)."""
    number = tuple(int(p) for p in version.split(".") if p.isdigit())
    coded = "CWE" if number >= (2, 5) else "CE"
    when = "DTM" if number >= (2, 6) else "TS"
    if "valueQuantity" in obs:
        q = obs["valueQuantity"]
        unit = (comp(q.get("code"), q.get("unit"), dt.system_name(q.get("system")))
                if q.get("code") else comp(q.get("unit")))
        if q.get("comparator"):
            return "SN", comp(q["comparator"], _number(q.get("value"))), unit
        return "NM", value(_number(q.get("value"))), unit
    if "valueCodeableConcept" in obs:
        return coded, dt.concept(obs["valueCodeableConcept"]), ""
    if "valueString" in obs:
        s = obs["valueString"]
        return ("TX" if len(s) > 199 or "\n" in s else "ST"), value(s), ""
    if "valueBoolean" in obs:
        return coded, comp("Y" if obs["valueBoolean"] else "N",
                           "Yes" if obs["valueBoolean"] else "No", "HL70136"), ""
    if "valueInteger" in obs:
        return "NM", value(obs["valueInteger"]), ""
    if "valueDateTime" in obs:
        return when, dt.dtm(obs["valueDateTime"]), ""
    if "valueTime" in obs:
        return "TM", obs["valueTime"].replace(":", ""), ""
    if "valueRange" in obs:
        r = obs["valueRange"]
        low, high = (r.get("low") or {}), (r.get("high") or {})
        unit = comp(low.get("code") or high.get("code"), low.get("unit") or high.get("unit"))
        return "SN", comp("", _number(low.get("value")), "-", _number(high.get("value"))), unit
    if "valueRatio" in obs:
        r = obs["valueRatio"]
        return "SN", comp("", _number((r.get("numerator") or {}).get("value")), ":",
                          _number((r.get("denominator") or {}).get("value"))), ""
    return _attachments(obs)


# MIME top-level type -> table 0191 type of data (ED-2); the subtype (ED-3, table 0291) is the
# MIME subtype in capitals: application/pdf -> AP^PDF, text/plain -> TEXT^PLAIN
_DATA_TYPES = {"application": "AP", "image": "IM", "audio": "AU", "text": "TEXT",
               "video": "AP", "multipart": "multipart"}


def _attachments(obs: Json) -> tuple[str, str, str]:
    """The IG's valueAttachment extensions -> ED (embedded data, Base64) or RP (a URL), one
    OBX-5 repetition each; ("", "", "") when there are none."""
    found = [x["valueAttachment"] for x in obs.get("extension", ())
             if x.get("url") in VALUE_ATTACHMENT_URLS and isinstance(x.get("valueAttachment"),
                                                                      dict)]
    embedded = [a for a in found if a.get("data")]
    linked = [a for a in found if a.get("url") and not a.get("data")]
    if embedded and linked:  # one OBX has one type: writing either would drop the other
        raise ConversionError("an Observation holds both embedded and linked attachments; one "
                              "OBX carries either ED or RP values")
    if embedded:
        return "ED", reps(comp("", *_media(a.get("contentType")), "Base64", Raw(a["data"]))
                          for a in embedded), ""
    if linked:
        return "RP", reps(comp(a["url"], "", *_media(a.get("contentType"))) for a in linked), ""
    return "", "", ""


def _media(content_type: object) -> tuple[str, str]:
    """A MIME type -> (ED-2 type of data, ED-3 subtype)."""
    kind, _, subtype = str(content_type or "").split(";", 1)[0].strip().partition("/")
    return _DATA_TYPES.get(kind.lower(), "AP" if kind else ""), subtype.upper()


def _range_text(rng: Json) -> str:
    if rng.get("text"):
        return str(rng["text"])
    low, high = (rng.get("low") or {}).get("value"), (rng.get("high") or {}).get("value")
    if low is not None and high is not None:
        return f"{_number(low)}-{_number(high)}"
    if low is not None:
        return f">={_number(low)}"
    if high is not None:
        return f"<={_number(high)}"
    return ""


def nte(set_id: int, text: str) -> str:
    return segment("NTE", {1: str(set_id), 3: value(text)})
