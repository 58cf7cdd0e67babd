"""HL7 v2 data types to FHIR R4 data types, as plain dicts (the hot path never builds models).

Each function takes a :class:`~conduit.fhir.v2.Field` (one repetition) and answers a dict, or
``None`` when the v2 value is empty: FHIR forbids empty elements, so callers simply skip ``None``.
The maps follow the HL7 v2-to-FHIR IG data-type maps (DTM, XPN, XAD, XTN, CX, CWE/CE, HD, DR).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from conduit.fhir.codesystems import system_uri, table_uri
from conduit.fhir.ids import IdentifierSystems, system_of
from conduit.fhir.v2 import Field

__all__ = [
    "address", "codeable", "coding", "contact_point", "date", "datetime_", "identifier", "instant",
    "name", "number", "period", "text",
]

Json = dict[str, Any]

_DTM = re.compile(
    r"(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(\.\d{1,4})?)?)?)?)?)?"
    r"\s*(Z|[+-]\d{4})?$")


def text(value: str) -> str | None:
    """A FHIR string: internal whitespace runs kept, but never empty."""
    return value or None


def _code(value: str) -> str:
    """A FHIR code may not have leading/trailing or doubled whitespace."""
    return " ".join(value.split())


_DIGITS = frozenset({4, 6, 8, 10, 12, 14})  # YYYY[MM[DD[HH[MM[SS]]]]]


def _parts(value: str) -> tuple[str, ...] | None:
    if not value:  # most optional time fields are empty: no regex for them
        return None
    v = value.strip()
    # the usual shapes, digits alone or with a +-ZZZZ offset, are cut without the regex
    tz: str | None = None
    head = v
    if len(v) > 5 and v[-5] in "+-":
        head, tz = v[:-5], v[-5:]
    if len(head) in _DIGITS and head.isascii() and head.isdigit() and (
            tz is None or (tz[1:].isascii() and tz[1:].isdigit())):
        y, mo, d, h, mi, s = (head[:4], head[4:6], head[6:8], head[8:10], head[10:12],
                              head[12:14])
        # two ASCII digits compare as their numbers do
        if (mo and not "01" <= mo <= "12") or (d and not "01" <= d <= "31"):
            return None
        if h and (h > "23" or (mi and mi > "59") or (s and s > "59")):
            return None
        return y, mo, d, h, mi, s, "", tz or ""
    m = _DTM.match(v)
    if m is None:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    if (mo and not 1 <= int(mo) <= 12) or (d and not 1 <= int(d) <= 31):
        return None
    if h and (int(h) > 23 or (mi and int(mi) > 59) or (s and int(s) > 59)):
        return None
    return y, mo or "", d or "", h or "", mi or "", s or "", frac or "", tz or ""


def date(value: str) -> str | None:
    """DT/DTM -> FHIR date (``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``), dropping any time."""
    p = _parts(value)
    if p is None:
        return None
    y, mo, d = p[:3]
    return y + (f"-{mo}" if mo else "") + (f"-{d}" if mo and d else "")


def _offset(value: str, day: tuple[str, ...], tz: str | tzinfo) -> str:
    if value:
        return "Z" if value == "Z" else f"{value[:3]}:{value[3:]}"
    if isinstance(tz, tzinfo):
        return _zone_offset(tz, *day[:6])
    return tz


def _zone_offset(tz: tzinfo, y: str, mo: str, d: str, h: str, mi: str, s: str) -> str:
    """``+01:00``: the offset zone ``tz`` has at that local time, to the minute (as
    ``strftime("%z")`` cut to ``+HH:MM``, without formatting a whole time)."""
    delta = tz.utcoffset(datetime(int(y), int(mo), int(d), int(h), int(mi or 0), int(s or 0)))
    if delta is None:
        return "+00:00"
    text = _OFFSET_TEXT.get(delta)
    if text is None:  # a zone has a handful of offsets: each is written once per process
        seconds = int(delta.total_seconds())
        minutes = abs(seconds) // 60
        text = _OFFSET_TEXT[delta] = \
            f"{'-' if seconds < 0 else '+'}{minutes // 60:02d}:{minutes % 60:02d}"
    return text


_OFFSET_TEXT: dict[timedelta, str] = {}


def offset_at(value: str, tz: str | tzinfo) -> str | None:
    """The offset (``+01:00``) zone ``tz`` has at the local time DTM ``value`` names (its own
    offset ignored); None without a full date."""
    p = _parts(value)
    if p is None or not (p[1] and p[2]):
        return None
    return _offset("", (*p[:3], p[3] or "0", p[4], p[5]), tz)


def datetime_(value: str, tz: str | tzinfo | None = None) -> str | None:
    """DTM/TS -> FHIR dateTime keeping the sender's precision and time zone.

    FHIR wants a zone whenever there is a time: a time without one takes ``tz``, the sender's
    zone (see :mod:`conduit.core.timezone`), its offset on that day (daylight saving
    included); it is never written as UTC (``Z``) unless the sender wrote that. Without ``tz``
    such a time is cut to its date rather than given an invented offset. A date alone stays a
    date. Times keep the sender's offset; Microsoft's converter rewrites every time into the zone
    of the machine it runs on, which changes the text but not the instant.
    A time given to the hour or minute is padded to seconds, since FHIR has no such precision.
    """
    p = _parts(value)
    return None if p is None else _datetime(p, tz)


def _datetime(p: tuple[str, ...], tz: str | tzinfo | None) -> str:
    y, mo, d, h, mi, s, frac, zone = p
    if not (mo and d and h) or (not zone and not tz):  # date(value), without parsing again
        return y + (f"-{mo}" if mo else "") + (f"-{d}" if mo and d else "")
    return (f"{y}-{mo}-{d}T{h}:{mi or '00'}:{s or '00'}{frac if s else ''}"
            f"{_offset(zone, p, tz or '')}")


def instant(value: str, tz: str | tzinfo | None = None) -> str | None:
    """DTM -> FHIR instant, which needs at least a full date and time; else None."""
    p = _parts(value)
    if p is None or not p[3] or (not p[7] and not tz):
        return None
    return _datetime(p, tz)


def period(start: str, end: str, tz: str | tzinfo | None = None) -> Json | None:
    """Two DTM texts -> Period."""
    if not start and not end:
        return None
    out: Json = {}
    if s := datetime_(start, tz):
        out["start"] = s
    if e := datetime_(end, tz):
        out["end"] = e
    return out or None


def number(value: str) -> Decimal | None:
    """NM -> a Decimal (dumped verbatim, so ``7.10`` keeps its significant zero)."""
    v = value.strip()
    if not v:
        return None
    if v.startswith("+"):
        v = v[1:]
    if v.startswith("."):
        v = "0" + v
    elif v.startswith("-."):
        v = "-0" + v[1:]
    try:
        d = Decimal(v)
    except InvalidOperation:
        return None
    if not d.is_finite() or "e" in v.lower():
        return None
    return d


# -- coded values -------------------------------------------------------------------------------

def coding(code: str, display: str = "", system: str | None = None, version: str = "") -> Json:
    """A Coding dict from parts already decoded."""
    out: Json = {}
    if system:
        out["system"] = system
    if version:
        out["version"] = version
    if code:  # _code(code), without a call when there is no whitespace to fold
        out["code"] = code if " " not in code and code.isprintable() else _code(code)
    if display:
        out["display"] = display
    return out


def codeable(f: Field, table: str | None = None) -> Json | None:
    """CWE/CE/CNE -> CodeableConcept: both triplets become codings, CWE.9 the text.

    ``table`` is the HL7 table the field is bound to, used as the system when CWE.3 is empty.
    A triplet with a text but no code (``^KNEE-RIGHT AP LAT^L``) is a coding with that display
    and no code, as the IG's CWE[CodeableConcept] map has it (CWE.2 -> coding[1].display), its
    system only one the sender named; with no code at all the text is also CodeableConcept.text.
    """
    if not f.raw or not f:  # most coded fields a map reads are empty: no __bool__ call then
        return None
    c = f.components()
    # the two triplets (code, display, system name, version): CWE.1-3 + .7, CWE.4-6 + .8; a
    # display without a code is a coding's display, with no table's system (nothing claims a
    # code of it), only the one the sender named
    codings: list[Json] = []
    code, display, name = c[1], c[2], c[3]
    if code or display:
        codings.append(coding(code, display, system_uri(name) if name else
                              (table_uri(table) if table and code else None), c[7]))
    code2, display2, name2 = c[4], c[5], c[6]
    if code2 or display2:
        codings.append(coding(code2, display2, system_uri(name2) if name2 else
                              (table_uri(table) if table and code2 else None), c[8]))
    out: Json = {}
    if codings:
        out["coding"] = codings
    original = c[9] or ("" if code or code2 else display)
    if original:
        out["text"] = original
    return out or None


def codeable_text(value: str) -> Json | None:
    """A code or free text with no coding system (ST/ID fields) -> CodeableConcept.text."""
    return {"text": value} if value else None


def code_concept(code: str, table: str, display: str = "") -> Json | None:
    """An ID/IS value bound to an HL7 table -> CodeableConcept with that table's system."""
    if not code:
        return None
    return {"coding": [coding(code, display, table_uri(table))]}


# -- identifiers ----------------------------------------------------------------------------------

def hd_system(hd: Field) -> str | None:
    """HD (namespace ^ universal id ^ type) -> an identifier system URI, when one is honest."""
    return system_of(hd[1], hd[2], hd[3])


_IDENTIFIER_TYPES = table_uri("0203")


def identifier(f: Field, type_code: str = "", authority: int = 4,
               kind: int = 5, systems: IdentifierSystems | None = None) -> Json | None:
    """CX -> Identifier (value, system from the assigning authority, type, period).

    With ``systems`` (a conversion's sender and mapping) the system follows the rule of
    :mod:`conduit.fhir.ids` and is never missing; without, only a universal authority gives one.
    A namespace that is no URI (``MR``'s assigning authority ``HOSP``) cannot be the system by
    itself; it is kept as ``assigner.display`` so that nothing the sender said is lost.
    """
    c = f.components()
    value = c[1]
    if not value:
        return None
    out: Json = {"value": value}
    auth = f.subcomponents(authority)
    code = (c[kind] if kind else "") or type_code
    system: str | None
    if systems is not None:
        system, universal = systems.system(auth[1], auth[2], auth[3], code, value)
    else:
        system, universal = system_of(auth[1], auth[2], auth[3]), True
    if system:
        out["system"] = system
    if code:  # coding(code, "", _IDENTIFIER_TYPES), inlined: every identifier has one
        out["type"] = {"coding": [{"system": _IDENTIFIER_TYPES, "code": code if " " not in code
                                   and code.isprintable() else _code(code)}]}
    if kind and (c[7] or c[8]):
        p = period(c[7], c[8])
        if p:
            out["period"] = p
    if (not system or not universal) and auth[1]:
        out["assigner"] = {"display": auth[1]}
    return out


def entity_identifier(f: Field, type_code: str = "", *,
                      systems: IdentifierSystems | None = None) -> Json | None:
    """EI (entity id ^ namespace ^ universal id ^ type) -> Identifier (system as for CX)."""
    c = f.components()
    value = c[1]
    if not value:
        return None
    out: Json = {"value": value}
    system: str | None
    if systems is not None:
        system, universal = systems.system(c[2], c[3], c[4], type_code, value)
    else:
        system, universal = system_of(c[2], c[3], c[4]), True
    if system:
        out["system"] = system
    if type_code:
        out["type"] = {"coding": [coding(type_code, "", _IDENTIFIER_TYPES)]}
    if (not system or not universal) and c[2]:
        out["assigner"] = {"display": c[2]}
    return out


def identifier_key(ident: Json) -> str:
    """What makes an identifier unique: system (or assigner) and value."""
    return (ident.get("system") or ident.get("assigner", {}).get("display", "")) + "|" + \
        ident["value"]


# -- names, addresses, telecom --------------------------------------------------------------------

_NAME_USE = {"L": "official", "D": "usual", "A": "usual", "M": "maiden", "N": "nickname",
             "C": "official", "B": "old", "BAD": "old", "NB": "temp", "TEMP": "temp",
             "S": "anonymous", "U": "usual", "R": "official", "P": "official", "T": "usual",
             "I": "official", "K": "anonymous", "F": "official"}


def name(f: Field, use: str = "") -> Json | None:
    """XPN (or the name part of XCN, via :func:`person_name`) -> HumanName; the suffixes are
    XPN.4, the degree XPN.6 and the professional suffix XPN.14, in that order (IG XPN map)."""
    c = f.components()  # c[i] is f[i]
    out: Json = {}
    if fam := c[1]:
        out["family"] = fam
    if g := _present(c[2], c[3]):
        out["given"] = g
    if p := c[5]:
        out["prefix"] = [p]
    if c[4] or c[6] or c[14]:
        out["suffix"] = [v for v in (c[4], c[6], c[14]) if v]
    if not out:
        return None
    if u := _NAME_USE.get(c[7].upper()) or use:
        out["use"] = u
    valid = period(c[12], c[13])
    if not valid:  # XPN.10, the DR (range) component: its two subcomponents
        dr = f.subcomponents(10)
        valid = period(dr[1], dr[2])
    if valid:
        out["period"] = valid
    return out


def person_name(f: Field) -> Json | None:
    """The name inside an XCN/XPN-like provider field (id^family^given^middle^suffix^prefix)."""
    c = f.components()  # c[i] is f[i]
    out: Json = {}
    if fam := c[2]:
        out["family"] = fam
    if g := _present(c[3], c[4]):
        out["given"] = g
    if p := c[6]:
        out["prefix"] = [p]
    if s := _present(c[5], c[7]):
        out["suffix"] = s
    if not out:
        return None
    if u := _NAME_USE.get(c[10].upper()):
        out["use"] = u
    return out


def _present(first: str, second: str) -> list[str] | None:
    """The non-empty of two values, in order (no comprehension: names are read per person)."""
    if first:
        return [first, second] if second else [first]
    return [second] if second else None


_ADDRESS_USE = {"H": ("home", None), "B": ("work", None), "O": ("work", None),
                "C": ("temp", None), "BA": ("old", None), "M": (None, "postal"),
                "P": ("home", None), "RH": ("home", None), "V": ("temp", None),
                "SH": (None, "physical"), "BDL": (None, "physical")}


def address(f: Field) -> Json | None:
    """XAD -> Address (street lines, city, state, zip, country, district, use/type, period)."""
    c = f.components()  # c[i] is f[i]
    sad = f.subcomponents(1)
    lines = [v for v in (sad[1], sad[2] if sad[2] != sad[1] else "", c[2]) if v]
    out: Json = {}
    if lines:
        out["line"] = lines
    for key, i in (("city", 3), ("state", 4), ("postalCode", 5), ("country", 6),
                   ("district", 9)):
        if v := c[i]:
            out[key] = v
    if not out:
        return None
    use, kind = _ADDRESS_USE.get(c[7].upper(), (None, None))
    if use:
        out["use"] = use
    if kind:
        out["type"] = kind
    p = period(c[13], c[14])
    if not p:  # XAD.12 address validity range (DR)
        dr = f.subcomponents(12)
        p = period(dr[1], dr[2])
    if p:
        out["period"] = p
    return out


_TELECOM_USE = {"PRN": "home", "ORN": "home", "VHN": "home", "WPN": "work", "BPN": "work",
                "EMR": "temp", "ASN": "temp"}
_TELECOM_SYSTEM = {"PH": "phone", "CP": "phone", "FX": "fax", "BP": "pager", "INTERNET": "email",
                   "X.400": "email", "MD": "other", "TDD": "other", "TTY": "other"}


def contact_point(f: Field, use: str = "") -> Json | None:
    """XTN -> ContactPoint; the value is the e-mail, the unformatted number, or one built
    from country/area/local/extension, else the legacy XTN.1 text."""
    c = f.components()  # c[i] is f[i]
    equipment = c[3].upper()
    system = _TELECOM_SYSTEM.get(equipment)
    if system == "email" or (not system and c[4] and "@" in c[4]):
        value = c[4] or c[1]
        system = "email"
    elif c[12]:
        value = c[12]
    elif c[7]:
        value = " ".join(v for v in (f"+{c[5]}" if c[5] else "", f"({c[6]})" if c[6] else "",
                                     c[7], f"ext. {c[8]}" if c[8] else "") if v)
    else:
        value = c[1]
    if not value:
        return None
    out: Json = {"system": system or "phone", "value": value}
    u = "mobile" if equipment == "CP" else _TELECOM_USE.get(c[2].upper()) or use
    if u:
        out["use"] = u
    p = period(c[13], c[14])
    if p:
        out["period"] = p
    if c[18].isdigit() and int(c[18]) > 0:
        out["rank"] = int(c[18])
    return out
