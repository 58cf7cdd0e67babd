"""HL7 v2 coding-system names (CWE.3, table 0396) to FHIR code-system URIs.

The IG's "CodeSystem" ConceptMap names the URIs; the names below are the spellings met in real
feeds (``LN`` and ``LOINC``, ``SCT``/``SNM``/``SNOMED``...). An HL7 table (``HL70001``,
``HL7-0001``, ``0001``) becomes ``http://terminology.hl7.org/CodeSystem/v2-0001``; an OID
becomes ``urn:oid:...``;
a URI stays as it is. A local name with no URI (``99LAB``, ``L``) gives ``None``: a FHIR system
must be a URI, and inventing one (Microsoft's converter writes
``http://example.com/v2-to-fhir-converter/CodeSystem/<name>``) would claim a code system nobody
defines. Such a coding keeps its code and display without a system (the IG allows a
system-less Coding; a receiver can still match on the code and the text).
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["HL7_TABLE", "system_uri"]

HL7_TABLE = "http://terminology.hl7.org/CodeSystem/v2-"

_KNOWN: dict[str, str] = {}
for _uri, _names in {
    "http://loinc.org": ("LN", "LOINC"),
    "http://snomed.info/sct": ("SCT", "SNM", "SNM3", "SNOMED", "SNOMED-CT", "SNOMEDCT", "SCT2",
                               "SNOMED CT"),
    "http://hl7.org/fhir/sid/icd-10-cm": ("I10", "I10C", "ICD10", "ICD-10", "ICD10CM", "ICD-10-CM",
                                          "I10-CM"),
    "http://www.cms.gov/Medicare/Coding/ICD10": ("I10P", "ICD10PCS", "ICD-10-PCS"),
    "http://hl7.org/fhir/sid/icd-9-cm": ("I9", "I9C", "I9CDX", "ICD9", "ICD-9", "ICD9CM",
                                         "ICD-9-CM"),
    "http://www.nlm.nih.gov/research/umls/rxnorm": ("RXNORM", "RXN", "RXNRM"),
    "http://hl7.org/fhir/sid/cvx": ("CVX",),
    "http://terminology.hl7.org/CodeSystem/MVX": ("MVX",),
    "http://unitsofmeasure.org": ("UCUM",),
    "http://hl7.org/fhir/sid/ndc": ("NDC",),
    "http://www.ama-assn.org/go/cpt": ("CPT", "C4", "CPT4", "CPT-4"),
    "urn:iso:std:iso:3166": ("ISO3166_1", "ISO3166", "ISO 3166-1"),
    "urn:ietf:bcp:47": ("ISO639", "IETF"),
    "urn:oid:2.16.840.1.113883.6.238": ("CDCREC",),
    "http://nucc.org/provider-taxonomy": ("NUCC", "HCPTNUCC"),
    "http://www.nlm.nih.gov/research/umls/hcpcs": ("HCPCS", "HCPCS-II"),
    "http://hl7.org/fhir/sid/icd-10": ("I10WHO", "ICD10WHO"),
    "http://terminology.hl7.org/CodeSystem/v3-ActCode": ("ACTCODE",),
}.items():
    for _name in _names:
        _KNOWN[_name] = _uri

_TABLE = re.compile(r"(?:HL7[-_ ]?)?(\d{4})$")
_OID = re.compile(r"[0-2](?:\.\d+)+$")


@lru_cache(maxsize=1024)
def system_uri(name: str) -> str | None:
    """The FHIR system URI for a v2 coding-system name, or None when there is no honest one."""
    if not name:
        return None
    known = _KNOWN.get(name.upper())
    if known:
        return known
    table = _TABLE.match(name.upper())
    if table:
        return HL7_TABLE + table.group(1)
    if _OID.match(name):
        return "urn:oid:" + name
    if name.startswith(("http://", "https://", "urn:")):
        return name
    return None


def table_uri(table: str) -> str:
    """``table_uri("0001")`` -> the HL7 v2 table's FHIR code system."""
    return HL7_TABLE + table
