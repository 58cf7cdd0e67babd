"""HL7 v2 -> FHIR conversion speed next to the parse-only rate, on the same corpus, same run.

Not a test (timings depend on the machine); run it after touching conduit/fhir:

    .venv/bin/python scripts/bench_fhir.py [--seconds 3]

Messages: the Microsoft FHIR-Converter samples of tests/samples/corpus (full ADT/ORU/VXU/SIU/
MDM... messages, 4 to 60 segments). Rates are messages per second of CPU time
(time.process_time) on one core:

* parse only: ``Message.parse(raw)`` plus the MSH/PID reads any channel does;
* v2 -> FHIR: parse + convert to the Bundle dict + orjson bytes (what the step does);
* v2 -> FHIR validated: the same plus fhir.resources R4B validation (``validate: true``);
* FHIR -> v2: the Bundle dicts back to an HL7 v2.5.1 message (the fhir-to-hl7v2 step);
* hl7apy parse: for scale, the full-model parse the design doc measured at ~45/s.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from conduit.core.errors import MessageError  # noqa: E402
from conduit.fhir import convert, dumps  # noqa: E402
from conduit.fhir.tov2 import ConversionError, V2Options, to_hl7v2  # noqa: E402
from conduit.fhir.validate import bundle_problems  # noqa: E402
from conduit.hl7.message import Message  # noqa: E402

CORPUS = ROOT / "tests" / "samples" / "corpus" / "microsoft-fhir-converter"
SPLIT = V2Options(patients="split")


def rate(work: Callable[[Any], object], items: list[Any], seconds: float,
         limit: int | None = None) -> float:
    """Messages per CPU second, cycling through ``items`` for about ``seconds``."""
    done = 0
    start = time.process_time()
    while True:
        for item in items:
            work(item)
            done += 1
            if limit is not None and done >= limit:
                break
        elapsed = time.process_time() - start
        if elapsed >= seconds or (limit is not None and done >= limit):
            return done / elapsed


def parse_only(raw: bytes) -> object:
    m = Message.parse(raw)
    return m.message_type, m.control_id, m.get("PID-3.1"), m.get("PID-5.1")


def to_fhir(raw: bytes) -> bytes:
    return dumps(convert(Message.parse(raw)))


def to_fhir_validated(raw: bytes) -> list[str]:
    return bundle_problems(convert(Message.parse(raw)))


def to_v2(bundle: dict[str, Any]) -> str:
    """A merge or BAR^P02 Bundle holds several patients: one message each (in a batch); a
    refusal (an ADT whose Observations have notes, which ADT cannot carry) counts as done."""
    try:
        return to_hl7v2(bundle, SPLIT)
    except ConversionError:
        return ""


def _converts(raw: bytes) -> bool:
    try:
        convert(Message.parse(raw))
    except MessageError:
        return False
    return True


def hl7apy_parse(raw: bytes) -> object:
    from hl7apy.parser import parse_message

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return parse_message(raw.decode("utf-8").replace("\n", "\r"), find_groups=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    raws = [p.read_bytes() for p in sorted(CORPUS.glob("*.hl7"))]
    refused = [r for r in raws if not _converts(r)]
    if refused:  # e.g. MSH-3 and MSH-4 both empty: no sender, so no identifier system
        print(f"{len(refused)} messages refused by the conversion (not timed)")
        raws = [r for r in raws if r not in refused]
    bundles = [orjson.loads(to_fhir(r)) for r in raws]
    segments = sum(len(Message.parse(r)) for r in raws)
    entries = sum(len(b["entry"]) for b in bundles)
    print(f"{len(raws)} messages, {segments / len(raws):.1f} segments and "
          f"{entries / len(raws):.1f} Bundle entries per message on average")
    results = [
        ("parse only (Message.parse + 4 reads)", rate(parse_only, raws, args.seconds)),
        ("HL7 v2 -> FHIR Bundle JSON", rate(to_fhir, raws, args.seconds)),
        ("HL7 v2 -> FHIR, validated (R4B)", rate(to_fhir_validated, raws, args.seconds)),
        ("FHIR Bundle -> HL7 v2.5.1", rate(to_v2, bundles, args.seconds)),
        ("hl7apy parse (for scale)", rate(hl7apy_parse, raws, args.seconds, limit=200)),
    ]
    width = max(len(name) for name, _ in results)
    for name, value in results:
        print(f"{name:<{width}}  {value:>10,.0f} msg/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
