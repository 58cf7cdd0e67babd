"""Parse + 5 field reads per message on the whole test corpus: ours vs python-hl7 vs hl7apy.

Not a test (timings depend on the machine); run it after touching conduit/hl7/message.py:

    .venv/bin/python scripts/bench_parse.py [--seconds 3]

Each parser gets the same message texts (bytes for ours, as MLLP delivers them) and reads
MSH-9.1, MSH-9.2, MSH-10, PID-3.1 and PID-5.1. One core, one process, same run. Rates use
CPU time of this process (time.process_time), so other work on a shared machine skews them less.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conduit.core.errors import HL7ParseError  # noqa: E402
from conduit.hl7.batch import split_messages  # noqa: E402
from conduit.hl7.codec import decode  # noqa: E402
from conduit.hl7.message import Message  # noqa: E402

PATHS = ("MSH-9.1", "MSH-9.2", "MSH-10", "PID-3.1", "PID-5.1")


def corpus() -> list[str]:
    texts: list[str] = []
    for path in sorted((ROOT / "tests" / "samples" / "corpus").rglob("*.hl7")):
        try:
            texts += split_messages(decode(path.read_bytes())[0])
        except HL7ParseError:
            continue  # the sample_bad_* files
    return texts


def ours(raw: bytes) -> tuple[str, ...]:
    m = Message.parse(raw)
    return tuple(m.get(p) for p in PATHS)


def python_hl7(text: str) -> tuple[str, ...]:
    import hl7

    m = hl7.parse(text)
    msh = m.segment("MSH")
    try:
        pid = m.segment("PID")
        pid3, pid5 = str(pid[3][0][0]), str(pid[5][0][0])
    except (KeyError, IndexError):
        pid3 = pid5 = ""
    return str(msh[9][0][0]), str(msh[9][0][1]), str(msh[10]), pid3, pid5


def hl7apy(text: str) -> tuple[str, ...]:
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.parser import parse_message

    m = parse_message(text, find_groups=False, validation_level=VALIDATION_LEVEL.TOLERANT)
    msh = m.msh
    pids = m.children.get("PID")
    pid3 = pids[0].pid_3.to_er7().split("^")[0] if pids else ""
    pid5 = pids[0].pid_5.to_er7().split("^")[0] if pids else ""
    return (msh.msh_9.to_er7().split("^")[0], msh.msh_9.to_er7().split("^")[1:2] and
            msh.msh_9.to_er7().split("^")[1], msh.msh_10.to_er7(), pid3, pid5)


def measure(name: str, fn: Callable[[object], object], items: list, seconds: float) -> float:
    usable = []
    for item in items:  # what this parser cannot read is left out of its timing
        try:
            fn(item)
            usable.append(item)
        except Exception:
            continue
    done = 0
    start = time.process_time()
    deadline = start + seconds
    while True:
        for item in usable:
            fn(item)
        done += len(usable)
        if time.process_time() >= deadline:
            break
    elapsed = time.process_time() - start
    rate = done / elapsed
    print(f"{name:<28} {rate:>12,.0f} msgs/s   ({len(usable)}/{len(items)} messages usable)")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per parser")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    texts = corpus()
    raw = [t.encode("utf-8") for t in texts]
    size = sum(len(r) for r in raw) / len(raw)
    print(f"{len(texts)} messages, mean {size:,.0f} bytes; parse + {len(PATHS)} field reads")
    fast = measure("conduit (bytes)", ours, raw, args.seconds)  # type: ignore[arg-type]
    small = [r for r in raw if len(r) < 1024]
    measure(f"conduit (bytes, {len(small)} < 1 KB)", ours, small, args.seconds)  # type: ignore
    measure("conduit (str)", ours, texts, args.seconds)  # type: ignore[arg-type]
    slow = measure("python-hl7 0.4", python_hl7, texts, args.seconds)  # type: ignore[arg-type]
    apy = measure("hl7apy (tolerant, no groups)", hl7apy, texts, args.seconds)  # type: ignore
    print(f"conduit is {fast / slow:,.0f}x python-hl7 and {fast / apy:,.0f}x hl7apy")


if __name__ == "__main__":
    main()
