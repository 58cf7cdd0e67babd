"""v2 codes -> FHIR codes, read from the IG's vocabulary maps (``ig/codesystems/*.csv``).

The HL7 v2-to-FHIR IG publishes one ConceptMap per v2 table it maps (``AdministrativeSex``,
``ResultStatus[Non-Queries]``...): v2 code -> FHIR code, display and system. Segment maps ask
:func:`coding` or :func:`code` by the map's name, as the IG's segment maps name it in their
"Vocabulary Mapping" column, instead of keeping hand-written dictionaries that drift from it.

A v2 code the IG leaves unmapped (no FHIR code), or maps only under a condition, is absent:
the caller decides what an unmapped code means rather than the table guessing.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["code", "coding", "mapped", "table"]

_DIR = Path(__file__).with_name("ig") / "codesystems"

Json = dict[str, Any]


@cache
def table(name: str) -> dict[str, Json]:
    """The IG ConceptMap ``name`` as {v2 code: FHIR Coding}; read once per process."""
    path = _DIR / f"{name}.csv"
    out: dict[str, Json] = {}
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    # the sheets differ by a blank column: find FHIR code, display and system by the header
    header = [h.strip().lower() for h in rows[1]]
    code_at = header.index("code", 6)
    display_at = header.index("display", code_at)
    system_at = header.index("code system", display_at)
    width = max(len(header), system_at + 1)
    for row in rows[2:]:
        row += [""] * (width - len(row))
        v2, condition, fhir, display, system = (row[0].strip(), row[3].strip(),
                                                row[code_at].strip(), row[display_at].strip(),
                                                row[system_at].strip())
        if not display and display_at > code_at + 1:  # some sheets put it under no header
            display = row[code_at + 1].strip()
        if not v2 or not fhir or condition or v2 in out:
            continue
        coding_: Json = {}
        if system:
            coding_["system"] = system
        coding_["code"] = fhir
        if display:
            coding_["display"] = display
        out[v2] = coding_
    for v2, coding_ in list(out.items()):  # senders vary the case; exact spelling wins
        out.setdefault(v2.upper(), coding_)
    return out


def coding(name: str, v2_code: str) -> Json | None:
    """The FHIR Coding the IG map ``name`` gives ``v2_code`` (a fresh dict), else None."""
    if not v2_code:
        return None
    found = table(name)
    hit = found.get(v2_code) or found.get(v2_code.upper())
    return dict(hit) if hit else None


def code(name: str, v2_code: str) -> str | None:
    """Just the FHIR code (for ``code``-typed elements such as ``gender`` or ``status``)."""
    if not v2_code:
        return None
    found = table(name)
    hit = found.get(v2_code) or found.get(v2_code.upper())
    return hit["code"] if hit else None


def mapped(concept: Json | None, name: str, v2_code: str) -> Json | None:
    """A CodeableConcept made from a CWE, with the coding the IG map ``name`` gives its code
    added first when the sender's own coding is not already that one."""
    hit = coding(name, v2_code)
    if concept is None or hit is None:
        return concept
    codings = concept.setdefault("coding", [])
    if not any(c.get("system") == hit.get("system") and c.get("code") == hit["code"]
               for c in codings):
        codings.insert(0, hit)
    return concept
