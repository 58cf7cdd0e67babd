#!/usr/bin/env python
"""Score Conduit's HL7 v2 -> FHIR conversion against a hand-written gold set.

Each ``tests/fhir/gold/<name>.hl7`` (a corpus message copied as is) has a ``<name>.yaml`` that
lists, per category, the values a correct Bundle holds. They were written from the v2 message and
the HL7 v2-to-FHIR IG's maps, never from a converter's output, so the score says how often
Conduit is right, not how much it looks like another converter (that is
``scripts/compare_fhir_converter.py``).

A gold file::

    source: microsoft-fhir-converter/ADT-A01-01.hl7     # where the message came from
    timezone: America/Chicago                          # the channel zone it is converted with
    facts:
      identity:                                        # category -> {selector: expected}
        Patient.identifier.where(value='10006579').system: urn:oid:1.2.3
      demographics:
        Patient.name.family: DUCK
        Patient.name.given: [DONALD, D]                # a list: exactly these values, any order
      time:
        Encounter.period.start: {instant: "2006-09-13T10:36:00-05:00"}
      references:
        Observation.subject.reference: {ref: Patient}

A selector is FHIRPath (fhirpathpy, R4 model) whose first name is a resource type: it is
evaluated over every resource of that type in the Bundle (``Patient.x`` means
``Bundle.entry.resource.where(resourceType='Patient').x``), so an extra Patient carrying the same
value makes the fact wrong. An expected value is:

* a scalar: the selection is exactly that one value (numbers compared as decimals);
* a list: the selection holds exactly those values, in any order (``[]``: nothing at all);
* ``{instant: T}``: exactly one dateTime, with a time and an offset, at the same moment as T;
* ``{ref: SELECTOR}``: every selected reference (at least one) points at the one resource
  SELECTOR picks (``Type/id`` or its ``urn:uuid`` fullUrl); ``{has_ref: SELECTOR}``: one of
  them does (an Appointment's participants: the patient among practitioners and rooms).

Every expectation counts once; one the converter does not meet (or a conversion that fails)
counts as wrong. Usage: ``scripts/gold_score.py [--json] [--verbose] [GOLD_DIR]``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fhirpathpy import evaluate  # noqa: E402
from fhirpathpy.models import models  # noqa: E402

from conduit.fhir import ConvertOptions, convert, dumps  # noqa: E402
from conduit.hl7.message import Message  # noqa: E402

DEFAULT_GOLD = ROOT / "tests" / "fhir" / "gold"
R4 = models["r4"]
_TYPE_PREFIX = re.compile(r"^([A-Z][A-Za-z]+)(?=$|[.\[])")

Json = dict[str, Any]


@dataclass
class Fact:
    message: str
    category: str
    selector: str
    expected: Any


@dataclass
class Result:
    fact: Fact
    ok: bool
    got: Any

    def describe(self) -> str:
        return (f"{self.fact.message} [{self.fact.category}] {self.fact.selector}: "
                f"expected {_show(self.fact.expected)}, got {_show(self.got)}")


@dataclass
class Score:
    results: list[Result] = field(default_factory=list)

    @property
    def right(self) -> int:
        return sum(r.ok for r in self.results)

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def share(self) -> float:
        return self.right / self.total if self.total else 0.0

    def by(self, key: str) -> dict[str, tuple[int, int]]:
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for r in self.results:
            k = getattr(r.fact, key)
            out[k][0] += r.ok
            out[k][1] += 1
        return {k: (v[0], v[1]) for k, v in sorted(out.items())}

    @property
    def mismatches(self) -> list[Result]:
        return [r for r in self.results if not r.ok]


# -- reading the Bundle --------------------------------------------------------------------------

def bundle_selector(selector: str) -> str:
    """``Patient.x`` -> the same path over every Patient entry of the Bundle."""
    m = _TYPE_PREFIX.match(selector)
    if not m or m.group(1) == "Bundle":
        return selector
    kind = m.group(1)
    return f"Bundle.entry.resource.where(resourceType='{kind}')" + selector[m.end():]


def select(bundle: Json, selector: str) -> list[Any]:
    return list(evaluate(bundle, bundle_selector(selector), {}, R4))


def _plain(value: Any) -> Any:
    """fhirpathpy's date/time objects as the text they came from."""
    if isinstance(value, str | int | float | Decimal | bool | dict | list) or value is None:
        return value
    return str(value)


# -- checking one fact ----------------------------------------------------------------------------

def _same(got: Any, want: Any) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    if isinstance(want, int | float | Decimal) or isinstance(got, int | float | Decimal):
        try:
            return Decimal(str(got)) == Decimal(str(want))
        except (InvalidOperation, ValueError):
            return False
    return bool(str(got) == str(want))


def _moment(value: Any) -> datetime | None:
    """A dateTime with a time and an offset as an aware datetime; anything else None."""
    text = str(value)
    if "T" not in text or not re.search(r"(Z|[+-]\d\d:\d\d)$", text):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _points_at(reference: Any, target: Json) -> bool:
    rid = target.get("id")
    return bool(rid) and str(reference) in (f"{target.get('resourceType')}/{rid}",
                                             f"urn:uuid:{rid}")


def check(bundle: Json, fact: Fact) -> Result:
    got = [_plain(v) for v in select(bundle, fact.selector)]
    want = fact.expected
    if isinstance(want, dict) and set(want) == {"instant"}:
        expected = _moment(want["instant"])
        if expected is None:
            raise ValueError(f"{fact.message}: {fact.selector}: instant needs a time and offset")
        ok = len(got) == 1 and _moment(got[0]) == expected
        return Result(fact, ok, got)
    if isinstance(want, dict) and set(want) in ({"ref"}, {"has_ref"}):
        (kind, target_selector), = want.items()
        targets = select(bundle, target_selector)
        hits = [len(targets) == 1 and isinstance(targets[0], dict) and _points_at(g, targets[0])
                for g in got]
        ok = bool(hits) and (all(hits) if kind == "ref" else any(hits))
        return Result(fact, ok, got)
    if isinstance(want, list):
        pool = list(got)
        ok = len(pool) == len(want)
        for w in want:
            hit = next((i for i, g in enumerate(pool) if _same(g, w)), None)
            if hit is None:
                ok = False
                break
            pool.pop(hit)
        return Result(fact, ok, got)
    return Result(fact, len(got) == 1 and _same(got[0], want), got)


# -- the gold set ---------------------------------------------------------------------------------

def load_facts(path: Path) -> tuple[Json, list[Fact]]:
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    facts = [Fact(path.stem, category, str(selector), expected)
             for category, items in (spec.get("facts") or {}).items()
             for selector, expected in (items or {}).items()]
    return spec, facts


def convert_file(hl7: Path, timezone: str | None) -> Json:
    message = Message.parse(hl7.read_bytes())
    bundle = convert(message, ConvertOptions(timezone=timezone))
    # read back from JSON as a FHIR server would, decimals kept exactly (7.20 stays 7.20)
    data: Json = json.loads(dumps(bundle), parse_float=Decimal)
    return data


def score(gold: Path = DEFAULT_GOLD) -> Score:
    out = Score()
    for path in sorted(gold.glob("*.yaml")):
        spec, facts = load_facts(path)
        try:
            bundle = convert_file(path.with_suffix(".hl7"), spec.get("timezone"))
        except Exception as exc:  # a conversion that fails gets every fact wrong
            out.results += [Result(f, False, f"conversion failed: {exc!r}") for f in facts]
            continue
        out.results += [check(bundle, f) for f in facts]
    return out


def _show(value: Any) -> str:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    text = repr(value) if not isinstance(value, dict | list) else str(value)
    return text if len(text) < 200 else text[:197] + "..."


def pct(right: int, total: int) -> str:
    return f"{100 * right / total:5.1f}%" if total else "    -"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("gold", nargs="?", type=Path, default=DEFAULT_GOLD)
    parser.add_argument("--json", action="store_true", help="numbers as JSON")
    parser.add_argument("--verbose", "-v", action="store_true", help="list every wrong fact")
    args = parser.parse_args(argv)
    s = score(args.gold)
    if args.json:
        print(orjson.dumps({
            "messages": len(s.by("message")), "right": s.right, "expected": s.total,
            "score": s.share,
            "categories": {k: {"right": r, "expected": t}
                           for k, (r, t) in s.by("category").items()},
            "mismatches": [r.describe() for r in s.mismatches],
        }).decode())
        return 0
    print(f"{'category':<16} {'right':>6} {'facts':>6} {'score':>7}")
    print("-" * 38)
    for name, (right, total) in s.by("category").items():
        print(f"{name:<16} {right:>6} {total:>6} {pct(right, total):>7}")
    print("-" * 38)
    print(f"{'TOTAL':<16} {s.right:>6} {s.total:>6} {pct(s.right, s.total):>7}"
          f"   ({len(s.by('message'))} messages)")
    if args.verbose:
        print()
        for r in s.mismatches:
            print(r.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
