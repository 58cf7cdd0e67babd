"""Fit written segments to the chosen v2 version's structure, as hl7apy (strict) reads it.

A field's data type changes between versions (PID-10 race is IS in 2.3, CE from 2.4; OBX-8 is
an IS), and each version has its own field list and length limits. Rather than one writer per
version, segments are written once, in the richest shape, then cut down here using hl7apy's
own tables for the version: fields the version lacks are dropped, components beyond the data
type's are dropped, a single-value type keeps its first component, and text longer than the
type allows is shortened (ST 199, IS 20, NM 16...). The tables load once per version.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

__all__ = ["fit_segment", "is_tn"]

# values for fields some versions require and FHIR has nothing for: OBX-4 sub-id (2.3.1),
# OBR-27 quantity/timing (2.3: one occurrence)
_DEFAULTS = {("OBX", 4): "1", ("OBR", 27): "1"}
# the limits hl7apy's base data types enforce under strict validation
_TN = re.compile(r"(\d\d\s)?(\(\d+\))?(\d+-?\d+)(X\d+)?(B\d+)?(C.+)?")
_MAX = {"ST": 199, "IS": 20, "NM": 16, "SI": 4, "GTS": 199, "TN": 199}


@lru_cache(maxsize=64)
def _segment(version: str, name: str) -> dict[int, tuple[Any, int, bool]]:
    """Field number -> (spec, max repetitions or -1, required) for a segment of ``version``."""
    from hl7apy import load_library

    library = load_library(version)
    spec = library.SEGMENTS.get(name)
    if spec is None:
        return {}
    out: dict[int, tuple[Any, int, bool]] = {}
    for field_name, field_spec, (least, most), _kind in spec[1]:
        out[int(field_name.rsplit("_", 1)[1])] = (field_spec, most, least > 0)
    return out


def fit_segment(version: str, text: str, *, lengths: bool = True) -> str:
    """``text`` (one non-MSH segment) reshaped for ``version``; ``lengths=False`` keeps values
    whole (only the structure is fitted)."""
    name, *values = text.split("|")
    fields = _segment(version, name)
    for (segment, n), default in _DEFAULTS.items():
        if segment == name and fields.get(n, (None, 0, False))[2]:
            values.extend([""] * (n - len(values)))
            values[n - 1] = values[n - 1] or default
    for i, raw in enumerate(values, start=1):
        if not raw or raw == '""':
            continue
        if i not in fields:
            values[i - 1] = ""
            continue
        spec, most, _ = fields[i]
        if spec[2] == "WD":
            values[i - 1] = ""
            continue
        repetitions = raw.split("~")
        if most > 0:
            repetitions = repetitions[:most]
        if spec[2] != "varies":
            repetitions = [_fit(rep, spec, "^", lengths) for rep in repetitions]
        values[i - 1] = "~".join(repetitions)
    while values and not values[-1]:
        values.pop()
    return "|".join([name, *values])


def _fit(value: str, spec: Any, sep: str | None, lengths: bool = True) -> str:
    kind, struct, datatype = spec[0], spec[1], spec[2]
    if kind == "leaf" or not struct:
        first = value.split(sep, 1)[0] if sep else value
        if sep == "^":
            first = first.split("&", 1)[0]
        return _limit(first, datatype) if lengths else ("" if datatype == "WD" else first)
    # components by their number (a version may lack some, e.g. XTN.1 in 2.6)
    known = {int(c[0].rsplit("_", 1)[1]): c[1] for c in struct}
    parts = value.split(sep) if sep else [value]
    inner = "&" if sep == "^" else None
    out = [_fit(part, known[n], inner, lengths) if n in known else ""
           for n, part in enumerate(parts, start=1)]
    while out and not out[-1]:
        out.pop()
    return (sep or "").join(out)


def is_tn(value: str) -> bool:
    """Whether a v2.3/2.4 TN field (XTN.1) can hold ``value`` (as hl7apy checks it)."""
    return _TN.match(value) is not None


def _limit(value: str, datatype: str) -> str:
    if datatype == "WD":  # withdrawn in this version
        return ""
    if datatype == "TN" and not is_tn(value):
        return ""  # v2.3/2.4 TN must look like a phone number; XTN.12 keeps it from 2.5 on
    limit = _MAX.get(datatype)
    if limit is None or len(value) <= limit:
        return value
    cut = value[:limit]
    if cut.count("\\") % 2:  # never leave half an escape sequence
        cut = cut[: cut.rindex("\\")]
    return cut
