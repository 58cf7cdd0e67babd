#!/usr/bin/env python
"""Compare Conduit's HL7 v2 -> FHIR conversion with Microsoft FHIR-Converter's sample output.

A secondary, likeness measure: how far the two converters agree, in both directions. How often
Conduit is *right* is ``scripts/gold_score.py`` (hand-written expectations from the v2 source and
the IG); Microsoft's Bundles are no gold standard (some are invalid; they invent code systems and
shift every time to the machine's zone).

For every ``*.hl7`` of the corpus folder (default: the project's copy of Microsoft's samples) it
converts the message, validates the Bundle under fhir.resources R4B, and, where Microsoft ships an
``expected/<stem>-expected.json`` Bundle, compares the facts both Bundles state. Each fact is
counted once as *agreed* (both have it), *missing* (only Microsoft's has it) or *extra* (only
ours has it; a value of ours that differs from theirs is one missing and one extra), so a
converter cannot score by adding values:

* recall = agreed / (agreed + missing): how much of Microsoft's content ours also states;
* precision = agreed / (agreed + extra): how much of ours Microsoft's also states.

The facts, chosen so a difference means a real difference in content:

* resource types: of the types both could produce (the mapped set below), those each holds;
* list fields (identifiers, names, addresses, telecom, location names), element by element after
  normalisation: identifier values, (family, first given), (city, postal code), digits of phone
  numbers / lower-cased e-mail (Microsoft also folds GT1/IN2 data into Patient: those show as
  missing);
* times are compared as instants (UTC) when they have a time, else as dates;
* Observations are paired by code (first coding), in order; an Observation of either side with
  no partner of the same code is one missing or extra "Observation code".

Usage: ``scripts/compare_fhir_converter.py [--quick] [--json] [CORPUS_DIR]``. ``--quick`` takes
one message per message type; ``--json`` prints the numbers for tests instead of the tables.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conduit.core.errors import MessageError  # noqa: E402
from conduit.fhir import convert, dumps  # noqa: E402
from conduit.fhir.validate import bundle_problems  # noqa: E402
from conduit.hl7.message import Message  # noqa: E402

DEFAULT_CORPUS = ROOT / "tests" / "samples" / "corpus" / "microsoft-fhir-converter"
MAPPED = frozenset({
    "Patient", "Encounter", "Observation", "DiagnosticReport", "ServiceRequest",
    "Immunization", "Condition", "AllergyIntolerance", "Procedure", "Coverage", "RelatedPerson",
    "Appointment", "DocumentReference", "MessageHeader", "Provenance", "Location",
    "Practitioner", "Organization",
})

Json = dict[str, Any]


# -- normalisation ---------------------------------------------------------------------------------

def instant(value: str | None) -> str | None:
    """A FHIR date/dateTime as a comparable string: UTC instant with a time, else the date."""
    if not value:
        return None
    if "T" not in value:
        return value
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if when.tzinfo is None:
        return when.isoformat()
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def number(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)).normalize()
    except (InvalidOperation, ValueError):
        return None


def text(value: Any) -> str:
    return " ".join(str(value).split()).lower() if value is not None else ""


def first_code(concept: Json | None) -> str:
    if not concept:
        return ""
    for c in concept.get("coding", ()):
        if c.get("code"):
            return text(c["code"])
    return text(concept.get("text"))


def telecom_value(t: Json) -> str:
    v = str(t.get("value", ""))
    return text(v) if "@" in v or t.get("system") == "email" else re.sub(r"\D", "", v)


# -- one Bundle as a set of facts --------------------------------------------------------------

class View:
    """Lookups over a Bundle: resources by type, references resolved."""

    def __init__(self, bundle: Json) -> None:
        self.entries = [e["resource"] for e in bundle.get("entry", []) if "resource" in e]
        self.by_ref = {f"{r['resourceType']}/{r.get('id')}": r for r in self.entries}

    def all(self, kind: str) -> list[Json]:
        return [r for r in self.entries if r["resourceType"] == kind]

    def first(self, kind: str) -> Json | None:
        found = self.all(kind)
        return found[0] if found else None

    def resolve(self, reference: Json | None) -> Json | None:
        return self.by_ref.get((reference or {}).get("reference", ""))

    def location_names(self, encounter: Json) -> set[str]:
        names: set[str] = set()
        for item in encounter.get("location", ()):
            loc = self.resolve(item.get("location"))
            seen = 0
            while loc is not None and seen < 10:
                if loc.get("name"):
                    names.add(text(loc["name"]))
                loc = self.resolve(loc.get("partOf"))
                seen += 1
        return names


Facts = dict[str, Any]


def patient_facts(v: View) -> Facts:
    p = v.first("Patient")
    if p is None:
        return {}
    return {
        "Patient identifiers": {text(i.get("value")) for i in p.get("identifier", ())
                                if i.get("value")},
        "Patient names": {(text(n.get("family")), text((n.get("given") or [""])[0]))
                          for n in p.get("name", ())},
        "Patient birth date": p.get("birthDate"),
        "Patient gender": p.get("gender"),
        "Patient addresses": {(text(a.get("city")), text(a.get("postalCode")))
                              for a in p.get("address", ())
                              if a.get("city") or a.get("postalCode")},
        "Patient telecom": {telecom_value(t) for t in p.get("telecom", ()) if t.get("value")},
    }


def encounter_facts(v: View) -> Facts:
    e = v.first("Encounter")
    if e is None:
        return {}
    period = e.get("period", {})
    return {
        "Encounter class": (e.get("class") or {}).get("code"),
        "Encounter period": (instant(period.get("start")), instant(period.get("end")))
        if period else None,
        "Encounter location": v.location_names(e),
    }


def observation_value(o: Json) -> Any:
    if "valueQuantity" in o:
        return number(o["valueQuantity"].get("value"))
    if "valueString" in o:
        return text(o["valueString"])
    if "valueCodeableConcept" in o:
        return first_code(o["valueCodeableConcept"])
    if "valueDateTime" in o:
        return instant(o["valueDateTime"])
    for key in ("valueRange", "valueRatio", "valueTime", "valueBoolean", "valueInteger"):
        if key in o:
            return orjson.dumps(o[key], option=orjson.OPT_SORT_KEYS).decode()
    return None


def observation_facts(o: Json) -> Facts:
    unit = (o.get("valueQuantity") or {}).get("unit") or (o.get("valueQuantity") or {}).get(
        "code")
    return {
        "Observation value": observation_value(o),
        "Observation unit": text(unit) if unit else None,
        "Observation status": o.get("status"),
        "Observation effective time": instant(o.get("effectiveDateTime")),
    }


# -- comparison --------------------------------------------------------------------------------

@dataclass
class Tally:
    agreed: int = 0
    missing: int = 0     # Microsoft's has it, ours not
    extra: int = 0       # ours has it, Microsoft's not

    def add(self, agreed: int = 0, missing: int = 0, extra: int = 0) -> None:
        self.agreed += agreed
        self.missing += missing
        self.extra += extra

    def merge(self, other: Tally) -> None:
        self.add(other.agreed, other.missing, other.extra)

    @property
    def recall(self) -> float:
        n = self.agreed + self.missing
        return self.agreed / n if n else 1.0

    @property
    def precision(self) -> float:
        n = self.agreed + self.extra
        return self.agreed / n if n else 1.0

    @property
    def compared(self) -> int:
        return self.agreed + self.missing + self.extra


@dataclass
class TypeStats:
    messages: int = 0
    converted: int = 0
    refused: int = 0      # a deliberate refusal (MessageError), e.g. a message naming no sender
    valid: int = 0
    expected: int = 0
    theirs_valid: int = 0
    types: Tally = field(default_factory=Tally)
    fields: Tally = field(default_factory=Tally)


def _empty(value: Any) -> bool:
    return value in (None, "", set(), (None, None))


def tally(ours: Any, theirs: Any) -> tuple[int, int, int]:
    """(agreed, missing, extra) for one fact: sets element by element, scalars as one value."""
    if isinstance(theirs, set) or isinstance(ours, set):
        mine = ours if isinstance(ours, set) else set()
        yours = theirs if isinstance(theirs, set) else set()
        return len(mine & yours), len(yours - mine), len(mine - yours)
    if _empty(theirs) and _empty(ours):
        return 0, 0, 0
    if _empty(theirs):
        return 0, 0, 1
    if _empty(ours):
        return 0, 1, 0
    return (1, 0, 0) if ours == theirs else (0, 1, 1)


def compare_facts(ours: Facts, theirs: Facts, per_field: dict[str, Tally],
                  overall: Tally) -> None:
    for name in sorted(ours.keys() | theirs.keys()):
        counts = tally(ours.get(name), theirs.get(name))
        if any(counts):
            per_field[name].add(*counts)
            overall.add(*counts)


def compare(ours: Json, theirs: Json, stats: TypeStats, per_field: dict[str, Tally]) -> None:
    o, t = View(ours), View(theirs)
    our_types = {r["resourceType"] for r in o.entries} & MAPPED
    their_types = {r["resourceType"] for r in t.entries} & MAPPED
    for kind in our_types | their_types:
        counts = (kind in our_types and kind in their_types, kind not in our_types,
                  kind not in their_types)
        stats.types.add(*map(int, counts))
        per_field[f"has {kind}"].add(*map(int, counts))
    compare_facts(patient_facts(o), patient_facts(t), per_field, stats.fields)
    compare_facts(encounter_facts(o), encounter_facts(t), per_field, stats.fields)
    # Observations paired by code, in order; the unpaired of either side count
    pool = defaultdict(list)
    for obs in o.all("Observation"):
        pool[first_code(obs.get("code"))].append(obs)
    for obs in t.all("Observation"):
        code = first_code(obs.get("code"))
        partner = pool[code].pop(0) if pool.get(code) else None
        if partner is None:
            per_field["Observation code"].add(missing=1)
            stats.fields.add(missing=1)
            compare_facts({}, observation_facts(obs), per_field, stats.fields)
        else:
            per_field["Observation code"].add(agreed=1)
            stats.fields.add(agreed=1)
            compare_facts(observation_facts(partner), observation_facts(obs), per_field,
                          stats.fields)
    for leftover in pool.values():
        for obs in leftover:
            per_field["Observation code"].add(extra=1)
            stats.fields.add(extra=1)
            compare_facts(observation_facts(obs), {}, per_field, stats.fields)
    for kind, key, getter in (
        ("Immunization", "Immunization vaccine code",
         lambda r: first_code(r.get("vaccineCode"))),
        ("Immunization", "Immunization date", lambda r: instant(r.get("occurrenceDateTime"))),
        ("Condition", "Condition code", lambda r: first_code(r.get("code"))),
        ("AllergyIntolerance", "AllergyIntolerance code", lambda r: first_code(r.get("code"))),
        ("AllergyIntolerance", "AllergyIntolerance reactions",
         lambda r: frozenset({text(m.get("text")) or first_code(m) for x in r.get("reaction", ())
                              for m in x.get("manifestation", ())}) or None),
    ):
        compare_sets(o.all(kind), t.all(kind), key, getter, per_field, stats.fields)


def compare_sets(ours: list[Json], theirs: list[Json], key: str,
                 getter: Callable[[Json], Any], per_field: dict[str, Tally],
                 overall: Tally) -> None:
    """The values of one kind of resource on both sides, as multisets (any order)."""
    mine = Counter(v for r in ours if not _empty(v := getter(r)))
    yours = Counter(v for r in theirs if not _empty(v := getter(r)))
    counts = ((mine & yours).total(), (yours - mine).total(), (mine - yours).total())
    if any(counts):
        per_field[key].add(*counts)
        overall.add(*counts)


# -- the run -----------------------------------------------------------------------------------

def run(corpus: Path, quick: bool) -> tuple[dict[str, TypeStats], dict[str, Tally]]:
    by_type: dict[str, TypeStats] = defaultdict(TypeStats)
    per_field: dict[str, Tally] = defaultdict(Tally)
    seen_types: set[str] = set()
    for path in sorted(corpus.glob("*.hl7")):
        raw = path.read_bytes()
        try:
            message = Message.parse(raw)
            kind = message.message_type or "?"
        except Exception:
            kind = "unparseable"
            message = None
        if quick and kind in seen_types:
            continue
        seen_types.add(kind)
        stats = by_type[kind]
        stats.messages += 1
        if message is None:
            continue
        try:
            ours = orjson.loads(dumps(convert(message)))
        except MessageError as exc:
            stats.refused += 1
            print(f"{path.name}: refused: {exc}", file=sys.stderr)
            continue
        except Exception as exc:  # a crash is what this script is here to show
            print(f"{path.name}: conversion failed: {exc!r}", file=sys.stderr)
            continue
        stats.converted += 1
        problems = bundle_problems(ours)
        stats.valid += not problems
        for problem in problems[:3]:
            print(f"{path.name}: invalid: {problem}", file=sys.stderr)
        expected = corpus / "expected" / f"{path.stem}-expected.json"
        if not expected.is_file():
            continue
        stats.expected += 1
        theirs = orjson.loads(expected.read_bytes().removeprefix(b"\xef\xbb\xbf"))
        stats.theirs_valid += not bundle_problems(theirs)
        compare(ours, theirs, stats, per_field)
    return dict(by_type), dict(per_field)


def pct(share: float, n: int) -> str:
    return f"{100 * share:5.1f}%" if n else "    -"


def total(by_type: Iterable[TypeStats]) -> TypeStats:
    out = TypeStats()
    for s in by_type:
        out.messages += s.messages
        out.converted += s.converted
        out.refused += s.refused
        out.valid += s.valid
        out.expected += s.expected
        out.theirs_valid += s.theirs_valid
        out.types.merge(s.types)
        out.fields.merge(s.fields)
    return out


def print_tables(by_type: dict[str, TypeStats], per_field: dict[str, Tally]) -> None:
    head = (f"{'message type':<14} {'msgs':>4} {'converted':>9} {'valid R4B':>9} "
            f"{'expected':>8} {'MS valid':>8} {'types R/P':>15} {'key fields R/P':>15}")
    print(head)
    print("-" * len(head))
    rows = [*sorted(by_type.items()), ("TOTAL", total(by_type.values()))]
    for kind, s in rows:
        if kind == "TOTAL":
            print("-" * len(head))
        print(f"{kind:<14} {s.messages:>4} {s.converted:>9} {s.valid:>9} {s.expected:>8} "
              f"{s.theirs_valid:>8} {recall_precision(s.types):>15} "
              f"{recall_precision(s.fields):>15}")
    print()
    print("R = recall (share of Microsoft's facts ours states too), "
          "P = precision (share of ours Microsoft's states too)")
    print()
    head = (f"{'field (vs Microsoft expected)':<34} {'agreed':>6} {'missing':>7} {'extra':>6} "
            f"{'recall':>7} {'precision':>9}")
    print(head)
    print("-" * len(head))
    for name, t in sorted(per_field.items(), key=lambda kv: (kv[0].startswith("has "), kv[0])):
        print(f"{name:<34} {t.agreed:>6} {t.missing:>7} {t.extra:>6} "
              f"{pct(t.recall, t.compared):>7} {pct(t.precision, t.compared):>9}")


def recall_precision(t: Tally) -> str:
    return f"{pct(t.recall, t.compared)}/{pct(t.precision, t.compared).strip()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--quick", action="store_true", help="one message per message type")
    parser.add_argument("--json", action="store_true", help="numbers as JSON (for tests)")
    args = parser.parse_args(argv)
    by_type, per_field = run(args.corpus, args.quick)
    if args.json:
        t = total(by_type.values())
        print(orjson.dumps({
            "messages": t.messages, "converted": t.converted, "refused": t.refused,
            "valid": t.valid,
            "expected": t.expected,
            "resource_types": {"recall": t.types.recall, "precision": t.types.precision},
            "key_fields": {"recall": t.fields.recall, "precision": t.fields.precision,
                           "agreed": t.fields.agreed, "missing": t.fields.missing,
                           "extra": t.fields.extra},
            "fields": {k: {"recall": v.recall, "precision": v.precision}
                       for k, v in per_field.items()},
        }).decode())
    else:
        print_tables(by_type, per_field)
    return 0


if __name__ == "__main__":
    sys.exit(main())
