"""FHIR data types -> HL7 v2 data types (the inverse of :mod:`conduit.fhir.datatypes`).

Each function answers the built v2 text (escaped, components joined), ``""`` when there is
nothing to say. Code systems go back to their v2 names (``http://loinc.org`` -> ``LN``).
"""

from __future__ import annotations

import re
from typing import Any

from conduit.fhir.codesystems import _KNOWN, HL7_TABLE
from conduit.fhir.tov2.fit import is_tn
from conduit.fhir.tov2.text import Raw, comp, sub

Json = dict[str, Any]

__all__ = ["address", "coding", "concept", "contact", "cx", "dtm", "name", "phone_parts",
           "system_name", "xcn"]

# URI -> the preferred v2 name (first spelling listed in codesystems for each URI)
_NAMES: dict[str, str] = {}
for _name, _uri in _KNOWN.items():
    _NAMES.setdefault(_uri, _name)
_NAMES["http://terminology.hl7.org/CodeSystem/v2-0203"] = "HL70203"

_DATETIME = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$")


def dtm(value: str | None) -> str:
    """FHIR date/dateTime/instant -> DTM, keeping precision and offset (``Z`` -> ``+0000``)."""
    if not value:
        return ""
    m = _DATETIME.match(value.strip())
    if m is None:
        return ""
    y, mo, d, h, mi, s, frac, tz = m.groups()
    out = y + (mo or "") + (d or "")
    if h:
        out += h + mi + (s or "") + ((frac or "")[:5] if s else "")
        if tz:
            out += "+0000" if tz == "Z" else tz.replace(":", "")
    return out


def system_name(uri: str | None) -> str:
    """A FHIR system URI -> its v2 coding-system name (``HL7nnnn`` for v2 tables)."""
    if not uri:
        return ""
    if uri in _NAMES:
        return _NAMES[uri]
    if uri.startswith(HL7_TABLE):
        return "HL7" + uri[len(HL7_TABLE):]
    if uri.startswith("urn:oid:"):
        return uri[8:]
    return uri


def coding(c: Json | None) -> Raw:
    """Coding -> CWE (code ^ display ^ system)."""
    if not c:
        return Raw("")
    return comp(c.get("code"), c.get("display"), system_name(c.get("system")))


def concept(cc: Json | None, prefer: str | None = None) -> Raw:
    """CodeableConcept -> CE/CWE: first coding (or the one in ``prefer``), a second as the
    alternate triplet; the text stands in for a missing display (CE has no CWE.9, and every
    version reads the six components)."""
    if not cc:
        return Raw("")
    codings = [c for c in cc.get("coding", ()) if c.get("code")]
    if prefer:
        codings.sort(key=lambda c: c.get("system") != prefer)
    text = cc.get("text")
    if not codings:
        return comp("", text) if text else Raw("")
    first = codings[0]
    parts: list[object] = [first.get("code"), first.get("display") or text,
                           system_name(first.get("system"))]
    if len(codings) > 1:
        alt = codings[1]
        parts += [alt.get("code"), alt.get("display"), system_name(alt.get("system"))]
    return comp(*parts)


def code_of(cc: Json | None) -> str:
    """The first code of a CodeableConcept, for IS/ID fields (one component)."""
    for c in (cc or {}).get("coding", ()):
        if c.get("code"):
            return str(c["code"])
    return ""


def _hd(system: str | None, assigner: str | None = None) -> Raw:
    if system and system.startswith("urn:oid:"):
        return sub(assigner, system[8:], "ISO")
    if system:
        return sub(assigner, system, "URI")
    return sub(assigner) if assigner else Raw("")


def cx(ident: Json | None, type_code: str = "") -> Raw:
    """Identifier -> CX (value ^^^ assigning authority ^ type)."""
    if not ident or not ident.get("value"):
        return Raw("")
    kind = type_code
    for c in (ident.get("type") or {}).get("coding", ()):
        if c.get("code"):
            kind = c["code"]
            break
    assigner = (ident.get("assigner") or {}).get("display")
    return comp(ident["value"], "", "", _hd(ident.get("system"), assigner), kind)


_NAME_USE = {"official": "L", "usual": "D", "nickname": "N", "maiden": "M", "anonymous": "S"}


def name(n: Json | None) -> Raw:
    """HumanName -> XPN (family ^ given ^ middle ^ suffix ^ prefix ^ degree ^ type)."""
    if not n:
        return Raw("")
    given = list(n.get("given", ()))
    family = n.get("family") or ("" if given else n.get("text", ""))
    suffix = list(n.get("suffix", ()))
    return comp(family, given[0] if given else "", " ".join(given[1:]),
                suffix[0] if suffix else "", " ".join(n.get("prefix", ())), "",
                _NAME_USE.get(n.get("use", ""), ""))


def xcn(ident: Json | None, n: Json | None) -> Raw:
    """An identifier and a name (of a Practitioner) -> XCN."""
    n = n or {}
    given = list(n.get("given", ()))
    ident = ident or {}
    suffix = list(n.get("suffix", ()))
    return comp(ident.get("value"), n.get("family") or n.get("text"),
                given[0] if given else "", " ".join(given[1:]), suffix[0] if suffix else "",
                " ".join(n.get("prefix", ())), "", "",
                _hd(ident.get("system"), (ident.get("assigner") or {}).get("display")))


_ADDRESS_TYPE = {"home": "H", "work": "B", "temp": "C", "old": "BA"}


def address(a: Json | None) -> Raw:
    """Address -> XAD (street ^ other ^ city ^ state ^ zip ^ country ^ type ^^ county)."""
    if not a:
        return Raw("")
    lines = list(a.get("line", ()))
    kind = "M" if a.get("type") == "postal" else _ADDRESS_TYPE.get(a.get("use", ""), "")
    return comp(lines[0] if lines else a.get("text", ""), ", ".join(lines[1:]), a.get("city"),
                a.get("state"), a.get("postalCode"), a.get("country"), kind, "",
                a.get("district"))


_EQUIPMENT = {"phone": "PH", "fax": "FX", "pager": "BP", "email": "Internet", "other": "PH",
              "sms": "CP", "url": "Internet"}
# the number's parts, when it is written in a form that says them: v2's own TN form
# ``[NN ][(999)]999-9999[X99999]`` or E.123's international ``+CC AREA LOCAL``
_TN_PARTS = re.compile(r"(?:(\d\d) )?\((\d+)\) ?(\d+(?:[- ]\d+)*)(?: ?[Xx](\d+))?")
_E123 = re.compile(r"\+(\d{1,3}) (\d+) (\d+(?: \d+)*)(?: ?(?:[Xx]|ext\.?) ?(\d+))?")


def phone_parts(number: str) -> tuple[str, str, str, str]:
    """(country, area, local, extension) of a number written in TN or E.123 form, else empty:
    what is not written apart is not split by guess."""
    for pattern in (_TN_PARTS, _E123):
        m = pattern.fullmatch(number.strip())
        if m:
            country, area, local, extension = m.groups()
            return (country or "", area, re.sub(r"\D", "", local), extension or "")
    return ("", "", "", "")


def contact(t: Json | None, version: str = "2.5.1") -> Raw:
    """ContactPoint -> XTN: the number in XTN.1 (a TN up to v2.4, text later), in its parts
    (XTN.5-8, every version) when written apart, and unformatted in XTN.12 (v2.5+); up to v2.4
    a number that is no TN is kept as XTN.9 (any text), the last component those versions
    have. Use and equipment codes in XTN.2/3; an e-mail in XTN.4."""
    if not t or not t.get("value"):
        return Raw("")
    system, value = t.get("system", "phone"), str(t["value"])
    use = "WPN" if t.get("use") == "work" else ("NET" if system == "email" else "PRN")
    equipment = "CP" if t.get("use") == "mobile" else _EQUIPMENT.get(system, "PH")
    if system == "email":
        return comp("", use, equipment, value)
    number = tuple(int(p) for p in version.split(".") if p.isdigit())
    text = value if number < (2, 5) and not is_tn(value) else ""
    return comp(value, use, equipment, "", *phone_parts(value), text, "", "", value)
