"""How much of the HL7 v2-to-FHIR IG's segment maps Conduit implements, measured by converting.

    PYTHONPATH=$PWD .venv/bin/python scripts/ig_coverage.py [--missing] [--corrected] [--json]
        [--readme]

The IG publishes one CSV per segment map (``PID[Patient]``: one row per v2 field -> FHIR
element, with conditions, data-type and vocabulary maps); copies live in
``conduit/fhir/ig/segments``. For each segment Conduit converts, :data:`SCOPE` names the maps
into the resources Conduit makes from it, and every row of those maps is counted:

* a row with no FHIR target (a note such as "mapped in PID[Account]", "local implementation",
  a field the IG leaves unmapped) is not in the denominator; it is shown as ``notes``;
* a row with a target is **implemented** only if a conversion shows it: for some fixture
  message of that segment (``tests/fhir/ig/SEG*.hl7``, every field filled), the element the row
  names is present in the resource of the map's type, holds the row's literal value if the row
  assigns one (an extension's url, ``"PLAC"``...), and is different when the row's field is
  blanked in the fixture (so an element filled by another field does not count). Rows of the
  segment itself (no field, e.g. ``AL1 clinicalStatus = "active"``) need only be present.
  References in the path (``performer(Practitioner)``, ``sender(Organization.name)``) are
  followed to the resource inside the Bundle (logical references too). The IG's slips of the
  pen in paths are read as meant: an unclosed ``(``, ``uri`` for an extension's ``url`` or a
  coding's ``system``, a miscased element (``valuedateTime``); its wrong literals (a url
  ending in ``.html``, ``us-ssn.``) are not: such a row stays missing unless
  :data:`CORRECTED` names its correction (below).

Corrected rows: where the IG's own row is wrong (a url that is not the extension's canonical
url, ``content.data`` without ``.attachment``, a data-absent-reason ``valueCodeableConcept``...)
:data:`CORRECTED` names the corrected target the row is checked against instead, each with the
FHIR or IG definition that says so. Such a row counts only if converting fills the corrected
target, by the same field-blanking check; it is shown apart ("3 via a corrected row") and listed
by ``--missing``/``--notes``/``--corrected``. A row whose condition is ``IF <its field> NOT
VALUED`` (a data-absent-reason) is shown by the blanked message: blanking the field makes it.

What this does not check: the IG's conditions (``IF PID-7 LENGTH GREATER THAN 8``) are not
evaluated (a row whose condition the fixtures do not meet still counts if the element comes
from the field), and values are compared only as "changed by the field", not against the IG's
data-type maps component by component. Nothing is declared by hand: a row counts because the
converter produced it, so the figure cannot claim what the code does not do (a correction
changes what is looked for, never whether it was produced).
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from conduit.fhir import convert  # noqa: E402
from conduit.hl7.message import Message  # noqa: E402

MAPS_DIR = ROOT / "conduit" / "fhir" / "ig" / "segments"
FIXTURES = ROOT / "tests" / "fhir" / "ig"
README = ROOT / "README.md"

SCOPE: dict[str, tuple[str, ...]] = {
    # segment: the IG maps into the resources Conduit makes from it
    "MSH": ("MSH[MessageHeader]", "MSH[Bundle]"),
    "EVN": ("EVN[Provenance]",),
    "PID": ("PID[Patient]", "PID[Account]"),
    "PD1": ("PD1[Patient]",),
    "NK1": ("NK1[RelatedPerson]",),
    "PV1": ("PV1[Encounter]",),
    "PV2": ("PV2[Encounter]",),
    "ORC": ("ORC[ServiceRequest]", "ORC[Immunization]"),
    "OBR": ("OBR[ServiceRequest]", "OBR[DiagnosticReport]"),
    "OBX": ("OBX[Observation]", "OBX[DocumentReference]"),
    "NTE": ("NTE[Observation]", "NTE[ServiceRequest]"),
    "SPM": ("SPM[Specimen]",),
    "AL1": ("AL1[AllergyIntolerance]",),
    "IAM": ("IAM[AllergyIntolerance]",),
    "DG1": ("DG1[Condition]", "DG1[Encounter]"),
    "PR1": ("PR1[Procedure]",),
    "IN1": ("IN1[Coverage]",),
    "GT1": (),  # the IG has no GT1 map
    "MRG": ("MRG[Account]",),
    "RXA": ("RXA[Immunization]",),
    "RXR": ("RXR[Immunization]",),
    "SCH": ("SCH[Appointment]",),
    "AIS": ("AIS[Appointment]",),
    "AIL": ("AIL[Appointment]",),
    "AIP": ("AIP[Appointment]",),
    "TXA": ("TXA[DocumentReference]",),
}

# Why rows are still missing, where that is the IG's doing or a choice: shown by --missing and
# counted in the README; a test checks every row named here is really missing (none hides an
# implemented row, none outlives its reason). The rows stay in the denominator.
_CONSTANT = "always so, whatever the field says: the field-blanking check cannot show it"
EXPLAINED: dict[tuple[str, str, str], str] = {
    ("MSH[Bundle]", "MSH", "type"):
        "by design: Conduit sends transaction or batch Bundles that a server applies",
    ("PID[Patient]", "PID-19", "identifier[4].type.coding.code"):
        "IG lists SS and SB for the same element; Conduit writes SS",
    ("PID[Patient]", "PID-35", "extension[6].url"): "patient-animal holds species and breed: "
        "with one field blanked the other keeps the url (done, not provable this way)",
    ("PID[Patient]", "PID-36", "extension[6].url"): "as PID-35",
    ("NK1[RelatedPerson]", "NK1-37", "identifier[3].type.coding.code"):
        "IG lists SS and SB for the same element; Conduit writes SS",
    ("PV1[Encounter]", "PV1-11",
     "location[3].extension.valueCodeableConcept.coding.system"):
        "IG slip: a ValueSet url (with a leading space) as a code system; no system written",
    ("PV2[Encounter]", "PV2-22", "meta.security"):
        "not done: a Yes/No code as a security label means nothing to a receiver",
    ("ORC[ServiceRequest]", "ORC-1", "intent"): _CONSTANT,
    ("OBR[ServiceRequest]", "OBR-11", "intent"): "add-on has no R4 intent code; "
        "otherwise " + _CONSTANT,
    ("OBR[ServiceRequest]", "OBR-13", "extension[1].url"):
        "by design: the value would be a CodeableReference, which R4 does not have",
    ("OBR[ServiceRequest]", "OBR-13", "extension[1].valueCodeableReference.concept"):
        "as the url row",
    ("OBX[Observation]", "OBX-5", "valueSampedData"):
        "not done: NA gives no origin or period for a SampledData",
    ("OBX[Observation]", "OBX-15", "performer[2](PractitionerRole)"):
        "not done: a producer code alone makes no PractitionerRole (it is the Organization)",
    ("OBX[Observation]", "OBX-33", "extension[1].uri"):
        "not done: several specimens per OBX go to a Group (R5), but an R4 Group cannot "
        "hold Specimens (Group.type, member.entity); the first is Observation.specimen",
    ("OBX[Observation]", "OBX-33",
     "extension[1].valueReference(Group.member.entity(Specimen.identifier[1])"): "as above",
    ("OBX[Observation]", "OBX-33", "extension[2].uri"): "as above",
    ("OBX[Observation]", "OBX-33",
     "extension[2].valueReference(Group.member.entity(Specimen.identifier[2]))"): "as above",
    ("OBX[DocumentReference]", "OBX-5", "content[2].contentType"):
        "not done: FT is written as plain text (its formatting resolved); the IG's "
        "'text/hl7v2' is no registered media type",
    ("IAM[AllergyIntolerance]", "IAM-17", "clinicalStatus"): "by design: table 0438 codes "
        "are not the required clinical-status codes; they become verificationStatus",
    ("PR1[Procedure]", "PR1-16", "code[1].value"):
        "IG slip: CodeableConcept has no value (a code modifier)",
    ("IN1[Coverage]", "IN1-5", "payer[1](Organization.address)"):
        "IG slip: 'payer' for payor; the insurer's address is written",
}

@dataclass(frozen=True)
class Correction:
    """What an IG row that is wrong is checked against: its path and/or assigned value."""

    path: str = ""        # the corrected FHIR path ("" = the IG's)
    assignment: str = ""  # the corrected assignment, quoted as the IG quotes ("" = the IG's)
    reason: str = ""      # one line: why, citing the canonical definition


_DAR = '"http://hl7.org/fhir/StructureDefinition/data-absent-reason"'
_DAR_WHY = ("IG slip: it gives the web page (R4/extension-data-absent-reason.html); the "
            "extension's canonical url is http://hl7.org/fhir/StructureDefinition/"
            "data-absent-reason (FHIR R4 extension-data-absent-reason)")
_BY_URL = "its extension is the one the corrected url row of the same field names"
_ATTACHMENT = ("IG slip: DocumentReference.content has no data/url/contentType; they are "
               "content.attachment's (FHIR R4 DocumentReference.content.attachment 1..1)")
CORRECTED: dict[tuple[str, str, str], Correction] = {
    ("MSH[MessageHeader]", "MSH-24", "source.endpoint.extension.url"):
        Correction(assignment=_DAR, reason=_DAR_WHY),
    ("MSH[MessageHeader]", "MSH-24", "source.endpoint.extension.valueCode"):
        Correction(reason=_BY_URL),
    ("MSH[MessageHeader]", "MSH-25", "destination[1].endpoint.extension.url"):
        Correction(assignment=_DAR, reason=_DAR_WHY),
    ("MSH[MessageHeader]", "MSH-25", "destination[1].endpoint.extension.valueCode"):
        Correction(reason=_BY_URL),
    ("EVN[Provenance]", "EVN", "activity.coding.display"):
        Correction(reason="the display is the IG's EventType (table 0003) display of the "
                   "trigger, not its expression 'event - :'+MSH-9.1^MSH-9.2: a Coding's "
                   "display is the code system's (FHIR R4 Coding.display)"),
    ("EVN[Provenance]", "EVN-4", "reason.extension[1].valueCodeableConcept"):
        Correction(path="reason.extension[1].valueCode",
                   reason="IG slip: data-absent-reason's value[x] is a code (FHIR R4 "
                   "extension-data-absent-reason: valueCode)"),
    ("PID[Patient]", "PID-19", "identifier[4].system"):
        Correction(assignment='"http://hl7.org/fhir/sid/us-ssn"',
                   reason="IG slip: 'us-ssn.' ends in a dot; the US SSN system is "
                   "http://hl7.org/fhir/sid/us-ssn (FHIR R4 identifier-registry)"),
    ("ORC[ServiceRequest]", "ORC-1",
     "extension[1].extension[1].valueCodeableConcept.coding.system"):
        Correction(assignment='"http://terminology.hl7.org/CodeSystem/v2-0119"',
                   reason="IG slip: a ValueSet url as a Coding's system; the codes are "
                   "the CodeSystem v2-0119's (THO v2-0119, order control codes)"),
    ("DG1[Condition]", "DG1-19", "extension[1].url"):
        Correction(assignment='"http://hl7.org/fhir/StructureDefinition/condition-assertedDate"',
                   reason="IG slip: a web page (www.hl7.org/fhir/extension-condition-"
                   "asserteddate); the canonical url is http://hl7.org/fhir/StructureDefinition/"
                   "condition-assertedDate (FHIR R4; DG1[Encounter] names it so)"),
    ("DG1[Condition]", "DG1-19", "extension[1].valueDateTime"): Correction(reason=_BY_URL),
    ("PV2[Encounter]", "PV2-9", "extension[2].url"):
        Correction(assignment='"http://hl7.org/fhir/5.0/StructureDefinition/'
                   'extension-Encounter.plannedEndDate"',
                   reason="IG slip: 'v\\5.0'; an R5 element's cross-version extension is "
                   "http://hl7.org/fhir/5.0/StructureDefinition/extension-<path> (FHIR "
                   "versions.html#extensions)"),
    ("PV2[Encounter]", "PV2-9", "extension[2].valueDateTime"): Correction(reason=_BY_URL),
    ("OBR[ServiceRequest]", "OBR-17", "requester.extension[1].url"):
        Correction(path="extension[17].url", assignment='"http://hl7.org/fhir/'
                   'StructureDefinition/servicerequest-order-callback-phone-number"',
                   reason="IG gives no url; the Extensions Pack's servicerequest-order-callback"
                   "-phone-number is 'OBR-17' and its context is ServiceRequest, not a "
                   "Reference"),
    ("OBR[ServiceRequest]", "OBR-17", "requester.extension[1].valueContactPoint"):
        Correction(path="extension[17].valueContactPoint", reason=_BY_URL),
    ("OBX[Observation]", "OBX-16", "performer[1](PractitionerRole.code.coding.code)"):
        Correction(assignment='"RO"', reason="IG slip: 'responsibleObserver' is no code of "
                   "practitioner-role (doctor, nurse...); OBX-16's role is RO, Responsible "
                   "Observer, of v2 table 0912 (THO v2-0912)"),
    ("OBX[Observation]", "OBX-16", "performer[1](PractitionerRole.code.coding.system)"):
        Correction(assignment='"http://terminology.hl7.org/CodeSystem/v2-0912"',
                   reason="as the code row"),
    ("OBX[Observation]", "OBX-19", "extension[2].url"):
        Correction(assignment='"http://hl7.org/fhir/StructureDefinition/'
                   'observation-analysis-date-time"',
                   reason="the IG names this url in the row's Comments column, not its "
                   "Assignment (Extensions Pack: observation-analysis-date-time)"),
    ("OBX[Observation]", "OBX-19", "extension[2].valueDateTime"): Correction(reason=_BY_URL),
    ("OBX[Observation]", "OBX-30", "extension[2].valueCodeableConcept.coding.system"):
        Correction(assignment='"http://terminology.hl7.org/CodeSystem/v2-0937"',
                   reason="IG slip: the extension's url as a code system; OBX-30 is v2 "
                   "table 0937, observation sub-type (THO v2-0937)"),
    ("OBX[DocumentReference]", "OBX-5", "content[2].data"):
        Correction(path="content[2].attachment.data", reason=_ATTACHMENT),
    ("OBX[DocumentReference]", "OBX-5", "content[3].url"):
        Correction(path="content[3].attachment.url", reason=_ATTACHMENT),
    ("OBX[DocumentReference]", "OBX-5", "content[4].data"):
        Correction(path="content[4].attachment.data", reason=_ATTACHMENT),
    ("OBX[DocumentReference]", "OBX-5", "content[4].contentType"):
        Correction(path="content[4].attachment.contentType",
                   assignment='"text/plain; charset=utf-8"',
                   reason=_ATTACHMENT + "; 'application/text' is no media type: plain text "
                   "is text/plain (RFC 2046)"),
}

_LITERAL = re.compile(r'^"([^"]*)"$')
_STEP = re.compile(r"^(\w+)(?:\[(\d+)\])?(?:\((.*)\))?$")
_FIELD = re.compile(r"^([A-Z][A-Z0-9]{2})-(\d+)$")


@dataclass(frozen=True)
class Row:
    """One row of an IG segment map."""

    map: str
    field: str        # "PID-17", or "AL1" for a row about the segment itself
    path: str         # the FHIR attribute, as the IG writes it ("extension[2].url")
    condition: str
    assignment: str
    datatype_map: str = ""  # "CX[Identifier]", "TQ[ServiceRequest]"...
    ig_path: str = ""       # when corrected (:data:`CORRECTED`): the IG's own path
    ig_assignment: str = ""  # ... and its own assignment

    @property
    def key(self) -> tuple[str, str, str]:
        """The row as the IG writes it (the key of :data:`EXPLAINED` and :data:`CORRECTED`)."""
        return (self.map, self.field, self.ig_path or self.path)

    @property
    def correction(self) -> str:
        """Why the row is checked against a corrected target, when it is."""
        c = CORRECTED.get(self.key)
        return c.reason if c else ""

    @property
    def resource_type(self) -> str:
        """The map's resource; a ``$this`` row whose data-type map makes another resource
        (``CX[RelatedPerson-Mother]``) is about that one."""
        if self.path == "$this" and "[" in self.datatype_map:
            made = self.datatype_map.split("[", 1)[1].rstrip("]").split("-", 1)[0]
            if made != "Extension":
                return made
        return self.map.split("[", 1)[1].rstrip("]").split("-", 1)[0]

    @property
    def steps(self) -> list[str]:
        """The path as steps; ``code="PLAC"`` written into a path loses its ``="PLAC"``."""
        if self.path == "$this":
            return []
        return _split_path(re.sub(r'\s*=\s*".*$', "", self.path))

    @property
    def literal(self) -> str | None:
        m = _LITERAL.match(self.assignment.strip())
        return m.group(1) if m else None

    @property
    def why(self) -> str:
        """Why the row is missing, when :data:`EXPLAINED` says."""
        return EXPLAINED.get(self.key, "")

    def __str__(self) -> str:
        cond = f"  [{self.condition}]" if self.condition else ""
        if self.ig_path:  # corrected: the target checked, then the IG's own row
            now = " = ".join(v for v in (self.path, self.assignment) if v)
            was = " = ".join(v for v in (self.ig_path, self.ig_assignment) if v)
            return f"{self.field} -> {now}{cond}" + (f"  (IG: {was})" if was != now else "")
        return f"{self.field} -> {self.path}{cond}"


@dataclass
class SegmentCoverage:
    segment: str
    maps: tuple[str, ...]
    implemented: list[Row] = field(default_factory=list)
    missing: list[Row] = field(default_factory=list)
    notes: list[Row] = field(default_factory=list)
    #: rows whose target the IG leaves undecided (:func:`undecided`): listed, not counted
    undecided: list[Row] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.implemented) + len(self.missing)

    @property
    def corrected(self) -> list[Row]:
        """Implemented rows counted against a corrected target (:data:`CORRECTED`)."""
        return [r for r in self.implemented if r.correction]

    @property
    def explained(self) -> list[Row]:
        return [r for r in self.missing if r.why]

    @property
    def percent(self) -> float:
        return 100.0 * len(self.implemented) / self.total if self.total else 100.0


_PLACEHOLDER = re.compile(r"^#[^#]+#$")


def undecided(rows: list[Row]) -> list[Row]:
    """Rows the IG leaves to be decided: a code written as a ``#placeholder#`` (SCH-12's
    ``#placer contact#``, in no code system) and the other rows of that same coding (its
    system), which no converter can fill without inventing a code."""
    codings = {(r.map, r.field, r.path.rsplit(".", 1)[0]) for r in rows
               if _PLACEHOLDER.match(r.assignment.strip())}
    return [r for r in rows if (r.map, r.field, r.path.rsplit(".", 1)[0]) in codings]


def ig_rows(map_name: str) -> tuple[list[Row], list[Row]]:
    """(rows with a FHIR target, rows without one) of an IG segment map."""
    with (MAPS_DIR / f"{map_name}.csv").open(encoding="utf-8-sig", newline="") as fh:
        table = list(csv.reader(fh))
    targets, notes = [], []
    for r in table[2:]:
        r += [""] * (17 - len(r))
        if not r[1].strip():
            continue
        row = Row(map_name, r[1].strip(), r[9].strip(), r[6].strip(), r[16].strip(),
                  r[14].strip())
        if fix := CORRECTED.get(row.key):
            row = replace(row, path=fix.path or row.path,
                          assignment=fix.assignment or row.assignment,
                          ig_path=row.path, ig_assignment=row.assignment)
        (targets if row.path else notes).append(row)
    return targets, notes


# -- fixtures -------------------------------------------------------------------------------------

def fixtures(segment: str) -> list[str]:
    """The fixture messages (``tests/fhir/ig/*.hl7``) holding the segment, CR-separated."""
    out = []
    for path in sorted(FIXTURES.glob("*.hl7")):
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        if any(ln.startswith(segment + "|") for ln in lines):
            out.append("\r".join(lines))
    return out


def blanked(text: str, field_id: str) -> str:
    """The message with field ``SEG-N`` emptied in every occurrence of the segment."""
    m = _FIELD.match(field_id)
    assert m, field_id
    name, n = m.group(1), int(m.group(2))
    lines = text.split("\r")
    for i, line in enumerate(lines):
        if line[:3] == name and line[3:4] == "|":
            parts = line.split("|")
            k = n - 1 if name == "MSH" else n
            if k < len(parts):
                parts[k] = ""
            lines[i] = "|".join(parts)
    return "\r".join(lines)


@cache
def _bundle(text: str) -> dict[str, Any]:
    return convert(Message.parse(text))


# -- reading an IG path out of a Bundle -----------------------------------------------------------

def _split_path(path: str) -> list[str]:
    """``sender(Organization.address.country)`` stays one step: dots inside () do not split."""
    steps, depth, cur = [], 0, ""
    for ch in path:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "." and depth == 0:
            steps.append(cur)
            cur = ""
        else:
            cur += ch
    steps.append(cur + ")" * max(depth, 0))  # the IG sometimes leaves a "(" open
    out = [s.strip() for s in steps if s.strip()]
    if len(out) > 1 and out[-1] == "uri" and out[-2].startswith("extension"):
        out[-1] = "url"  # and sometimes writes an extension's url as "uri"
    if len(out) > 1 and out[-1] == "uri" and out[-2].startswith("coding"):
        out[-1] = "system"  # or a coding's system as "uri"
    return out


class _Reader:
    """Walks IG paths over the resources of one Bundle."""

    def __init__(self, bundle: dict[str, Any], urls: dict[str, str]) -> None:
        self.bundle = bundle
        self.urls = urls  # "extension[2]"-style path prefix -> the url the map assigns it
        self.index = {f"{e['resource']['resourceType']}/{e['resource']['id']}": e["resource"]
                      for e in bundle.get("entry", ())}

    def roots(self, resource_type: str) -> list[Any]:
        if resource_type == "Bundle":
            return [self.bundle]
        return [r for r in self.index.values() if r["resourceType"] == resource_type]

    def values(self, row: Row) -> list[Any]:
        return self.walk(self.roots(row.resource_type), row.steps, "")

    def walk(self, nodes: list[Any], steps: list[str], prefix: str) -> list[Any]:
        for pos, step in enumerate(steps):
            m = _STEP.match(step)
            if m is None:
                return []
            name, _, target = m.groups()
            here = f"{prefix}.{step}" if prefix else step
            nxt = steps[pos + 1] if pos + 1 < len(steps) else ""
            found: list[Any] = []
            for node in _flat(nodes):
                if not isinstance(node, dict):
                    continue
                if name == "reference" and target is not None:
                    found.append(node)
                    continue
                value = node.get(name)
                if value is None:  # the IG sometimes miscases an element ("valuedateTime")
                    value = next((v for k, v in node.items() if k.lower() == name.lower()),
                                 None)
                if nxt.startswith("extension") and not isinstance(value, dict) and not (
                        isinstance(value, list) and value and isinstance(value[0], dict)):
                    value = node.get("_" + name)  # a primitive's (or primitives') extensions
                if value is not None:
                    found.extend(_flat([value]))
            if name == "extension" and (url := self.urls.get(here)):
                found = [e for e in found if isinstance(e, dict) and e.get("url") == url]
            if target is not None:
                found, rest = self._follow(found, target)
                if rest:
                    return self.walk(found, rest + steps[pos + 1:], "")
            nodes = found
            prefix = here
        return list(_flat(nodes))

    def _follow(self, refs: list[Any], target: str) -> tuple[list[Any], list[str]]:
        """References to ``Type`` (``Type.rest`` continues inside the resource)."""
        parts = _split_path(target)
        kind = re.sub(r"\[\d+\]", "", parts[0])
        out = []
        for r in refs:
            if isinstance(r, dict) and "reference" not in r and kind[:1].isupper():
                out.append(r)  # a data type written like a reference: note(Annotation.text)
                continue
            ref = r.get("reference", "") if isinstance(r, dict) else ""
            logical = isinstance(r, dict) and not ref and r.get("type") == kind
            if not ref.startswith(kind + "/") and not logical:
                continue
            out.append(self.index.get(ref, r) if len(parts) > 1 else r)
        return out, parts[1:]


def _flat(nodes: Iterable[Any]) -> Iterator[Any]:
    for n in nodes:
        if isinstance(n, list):
            yield from _flat(n)
        else:
            yield n


def _canon(value: Any, reader: _Reader, depth: int = 0) -> Any:
    """A value with references replaced by what they point at (ids differ, content counts)."""
    if isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str) and ref in reader.index and depth < 2:
            target = {k: v for k, v in reader.index[ref].items() if k != "id"}
            return _canon(target, reader, depth + 1)
        return {k: _canon(v, reader, depth) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        return [_canon(v, reader, depth) for v in value]
    return value


def _key(values: list[Any], reader: _Reader) -> list[bytes]:
    return sorted(orjson.dumps(_canon(v, reader), default=str, option=orjson.OPT_SORT_KEYS)
                  for v in values)


def _urls(rows: list[Row], field_id: str) -> dict[str, str]:
    """Extension path prefix -> the url the map assigns it; a url row of the same field wins
    (two fields may both write ``extension[3]``, each its own extension)."""
    out: dict[str, str] = {}
    for same in (False, True):
        for row in rows:
            if row.path.endswith((".url", ".uri")) and row.literal and \
                    (row.field == field_id) == same:
                out[row.path[:-4]] = row.literal
    return out


def verified(row: Row, messages: list[str], urls: dict[str, str]) -> bool:
    """Whether some fixture shows the row implemented (see the module docstring)."""
    absent = _absent_field(row)
    for text in messages:
        reader = _Reader(_bundle(text), urls)
        if absent:  # made by the field's absence: the blanked message must show it
            other = _Reader(_bundle(blanked(text, row.field)), urls)
            reader, other = other, reader
        values = reader.values(row)
        if not values:
            continue
        literal = row.literal
        primitives = [str(v).lower() if isinstance(v, bool) else v for v in values
                      if not isinstance(v, dict)]
        if literal is not None and primitives and literal not in primitives:
            continue
        if not _FIELD.match(row.field):
            return True
        if not absent:
            other = _Reader(_bundle(blanked(text, row.field)), urls)
        if _key(values, reader) != _key(other.values(row), other):
            return True
    return False


def _absent_field(row: Row) -> bool:
    """Whether the row is conditioned on its own field not being valued."""
    return bool(_FIELD.match(row.field)) and \
        row.condition.upper().startswith(f"IF {row.field} NOT VALUED")


def coverage(segments: Iterable[str] | None = None) -> list[SegmentCoverage]:
    out = []
    for segment in segments or SCOPE:
        maps = SCOPE[segment]
        result = SegmentCoverage(segment, maps)
        messages = fixtures(segment)
        for map_name in maps:
            targets, notes = ig_rows(map_name)
            result.notes.extend(notes)
            result.undecided.extend(undecided(targets))
            for row in targets:
                if row in result.undecided:
                    continue
                (result.implemented if verified(row, messages, _urls(targets, row.field))
                 else result.missing).append(row)
        out.append(result)
    return out


# -- output ---------------------------------------------------------------------------------------

def markdown(results: list[SegmentCoverage]) -> str:
    lines = ["| Segment | IG maps | Rows implemented | % | Missing, of them explained | "
             "Rows without a FHIR target |",
             "|---|---|---|---|---|---|"]
    for r in results:
        maps = ", ".join(r.maps) or "(no IG map)"
        pct = f"{r.percent:.0f} %" if r.total else "-"
        fixed = f", {len(r.corrected)} via a corrected row" if r.corrected else ""
        if r.undecided:
            fixed += f" ({len(r.undecided)} more the IG leaves undecided)"
        lines.append(f"| {r.segment} | {maps} | {len(r.implemented)}/{r.total}{fixed} | {pct} | "
                     f"{len(r.missing)}, {len(r.explained)} | {len(r.notes)} |")
    implemented = sum(len(r.implemented) for r in results)
    total = sum(r.total for r in results)
    corrected = sum(len(r.corrected) for r in results)
    undecided_rows = sum(len(r.undecided) for r in results)
    lines.append(f"| **all** | | **{implemented}/{total}**, {corrected} via a corrected row "
                 f"({undecided_rows} more the IG leaves undecided) | "
                 f"**{100.0 * implemented / total:.0f} %** | "
                 f"{sum(len(r.missing) for r in results)}, "
                 f"{sum(len(r.explained) for r in results)} | "
                 f"{sum(len(r.notes) for r in results)} |")
    return "\n".join(lines)


README_START = "<!-- ig-coverage:start (scripts/ig_coverage.py --readme) -->"
README_END = "<!-- ig-coverage:end -->"


def readme_with(table: str, text: str) -> str:
    start, end = text.index(README_START), text.index(README_END)
    return text[:start + len(README_START)] + "\n" + table + "\n" + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("segments", nargs="*", help="only these segments (default: all)")
    parser.add_argument("--missing", action="store_true", help="list the rows not implemented")
    parser.add_argument("--notes", action="store_true", help="list the rows without a target")
    parser.add_argument("--corrected", action="store_true",
                        help="list the rows counted against a corrected target (also shown "
                        "by --missing and --notes)")
    parser.add_argument("--json", action="store_true", help="figures as JSON")
    parser.add_argument("--markdown", action="store_true", help="the README table")
    parser.add_argument("--readme", action="store_true", help="rewrite the README's table")
    args = parser.parse_args(argv)
    unknown = [s for s in args.segments if s not in SCOPE]
    if unknown:
        parser.error(f"not a converted segment: {', '.join(unknown)}")
    results = coverage(args.segments or None)
    if args.json:
        sys.stdout.write(orjson.dumps({r.segment: {
            "maps": r.maps, "implemented": len(r.implemented), "total": r.total,
            "notes": len(r.notes), "explained": len(r.explained),
            "undecided": [{"row": str(u), "map": u.map} for u in r.undecided],
            "corrected": [{"row": str(c), "map": c.map, "why": c.correction}
                          for c in r.corrected],
            "missing": [{"row": str(m), "map": m.map, "why": m.why} for m in r.missing]}
            for r in results}, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    if args.readme:
        README.write_text(readme_with(markdown(results), README.read_text(encoding="utf-8")),
                          encoding="utf-8")
    if args.markdown or args.readme:
        print(markdown(results))
        return 0
    for r in results:
        maps = ", ".join(r.maps) or "(no IG map)"
        fixed = f"  ({len(r.corrected)} via a corrected row)" if r.corrected else ""
        if r.undecided:
            fixed += f"  ({len(r.undecided)} left undecided by the IG, not counted)"
        print(f"{r.segment:4} {len(r.implemented):4}/{r.total:<4} {r.percent:5.1f} %{fixed}"
              f"  ({len(r.notes)} rows without target)  {maps}")
        listed = args.missing or args.notes or args.corrected
        for label, rows, show in (("corrected", r.corrected, listed),
                                  ("missing", r.missing, args.missing),
                                  ("undecided", r.undecided, listed),
                                  ("note", r.notes, args.notes)):
            if show:
                for row in rows:
                    why = row.correction if label == "corrected" else \
                        row.why if label == "missing" else ""
                    why = f"\n           why: {why}" if why else ""
                    print(f"       {label}: {row}   ({row.map}){why}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
