"""HL7 v2 -> FHIR conversion speed next to the parse-only rate, on the same corpus, same run.

Not a test (timings depend on the machine); run it after touching conduit/fhir:

    .venv/bin/python scripts/bench_fhir.py [--seconds 3]

Against an older checkout, in the same run (the machine's speed drifts, so the two alternate
run by run and the medians are compared; both convert the same messages):

    .venv/bin/python scripts/bench_fhir.py --against /path/to/old/checkout --runs 7

The optional mypyc build (``make install-compiled``) against pure Python, same checkout:

    .venv/bin/python scripts/bench_fhir.py --against . --against-pure --runs 7

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
import os
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CODE_ENV = "CONDUIT_BENCH_CODE"  # --against: the checkout whose conduit a child run imports
sys.path.insert(0, os.environ.get(CODE_ENV) or str(ROOT))

import orjson  # noqa: E402

from conduit.core.errors import MessageError  # noqa: E402
from conduit.fhir import convert, dumps  # noqa: E402
from conduit.fhir.validate import bundle_problems  # noqa: E402
from conduit.hl7.message import Message  # noqa: E402

PURE_ENV = "CONDUIT_FHIR_PURE"  # conduit.fhir.compiled: pure Python even with the mypyc build
CORPUS = ROOT / "tests" / "samples" / "corpus" / "microsoft-fhir-converter"


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


def fhir_build() -> str:
    """Compiled (the optional mypyc build) or pure Python, in the checkout imported."""
    try:
        from conduit.fhir import compiled
    except ImportError:  # a checkout from before the optional build (--against)
        return "pure Python"
    return compiled.build


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
    from conduit.fhir.tov2 import ConversionError, V2Options, to_hl7v2

    try:
        return to_hl7v2(bundle, V2Options(patients="split"))
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
    parser.add_argument("--against", type=Path, metavar="CHECKOUT",
                        help="time v2 -> FHIR here and in CHECKOUT (another commit's work "
                        "tree), alternating, and print each run and the medians")
    parser.add_argument("--runs", type=int, default=5, help="runs of each side (--against)")
    parser.add_argument("--against-pure", action="store_true",
                        help=f"the --against side runs pure Python ({PURE_ENV}=1), "
                        "even where the mypyc build is installed")
    parser.add_argument("--only-fhir", action="store_true", help="time v2 -> FHIR alone")
    parser.add_argument("--skip", action="append", default=[], metavar="FILE",
                        help="leave this corpus file out (repeatable)")
    args = parser.parse_args(argv)
    paths = [p for p in sorted(CORPUS.glob("*.hl7")) if p.name not in args.skip]
    refused = [p for p in paths if not _converts(p.read_bytes())]
    if refused:  # e.g. MSH-3 and MSH-4 both empty: no sender, so no identifier system
        print(f"{len(refused)} messages refused by the conversion (not timed): "
              + ", ".join(p.name for p in refused))
    if args.against:
        return _alternate(args, [p.name for p in refused])
    raws = [p.read_bytes() for p in paths if p not in refused]
    bundles = [orjson.loads(to_fhir(r)) for r in raws]
    segments = sum(len(Message.parse(r)) for r in raws)
    entries = sum(len(b["entry"]) for b in bundles)
    print(f"fhir: {fhir_build()}")
    print(f"{len(raws)} messages, {segments / len(raws):.1f} segments and "
          f"{entries / len(raws):.1f} Bundle entries per message on average")
    if args.only_fhir:
        import conduit

        entries = sum(len(orjson.loads(to_fhir(r))["entry"]) for r in raws) / len(raws)
        print(f"v2->FHIR {rate(to_fhir, raws, args.seconds):.1f} msg/s {entries:.2f} entries "
              f"[{fhir_build()}] ({conduit.__file__})")
        return 0
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


def _alternate(args: argparse.Namespace, refused: list[str]) -> int:
    """Child runs of this script (v2 -> FHIR only), here and in ``args.against`` in turn, each
    leaving out what this checkout refuses, so that both time the same messages."""
    sides = {"here": str(ROOT), "against": str(args.against.resolve())}
    command = [sys.executable, __file__, "--only-fhir", "--seconds", str(args.seconds),
               *(f"--skip={name}" for name in [*args.skip, *refused])]
    figures: dict[str, list[float]] = {side: [] for side in sides}
    entries: dict[str, float] = {}
    builds: dict[str, str] = {}
    for run in range(args.runs):
        for side in (("against", "here") if run % 2 == 0 else ("here", "against")):
            env = {**os.environ, CODE_ENV: sides[side]}
            if side == "against" and args.against_pure:
                env[PURE_ENV] = "1"
            out = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
            line = out.stdout.strip().splitlines()[-1]
            figures[side].append(float(line.split()[1]))
            entries[side] = float(line.split()[3])
            builds[side] = line.split("[", 1)[1].split("]", 1)[0] if "[" in line else "?"
            if not line.endswith(f"({sides[side]}/conduit/__init__.py)"):
                raise SystemExit(f"the {side} run imported another conduit: {line}")
            print(f"run {run + 1} {side:<7} {figures[side][-1]:8,.0f} msg/s", flush=True)
    for side, path in sides.items():
        values = ", ".join(f"{v:,.0f}" for v in figures[side])
        median = statistics.median(figures[side])
        print(f"{side:<7} median {median:7,.0f} msg/s  ({values})  {path}, fhir: {builds[side]}")
        print(f"{'':<7} {entries[side]:.1f} Bundle entries per message: "
              f"{median * entries[side]:,.0f} entries/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
