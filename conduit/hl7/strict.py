"""Opt-in strict validation (``validate: strict``) against the HL7 standard, via hl7apy.

hl7apy checks structure (segment groups, cardinality, datatypes) against the official tables
for the message's version. It is slow (tens of messages a second), so it never runs on the hot
path unless a channel asks; the lazy parser stays the source of truth for reading fields.
"""

from __future__ import annotations

import os
import re
import tempfile

from conduit.hl7.message import Message

__all__ = ["validate_strict"]


def _readable(problem: str, msg: Message) -> str:
    """Reword hl7apy's messages that name Python objects instead of HL7 things."""
    if problem.startswith("Unknown element found: None.<Message"):
        structure = msg.message_structure or msg.message_type.replace("^", "_")
        return f"message structure {structure!r} is not defined in HL7 {msg.version}"
    m = re.fullmatch(r"Invalid children detected for <(\w+) (\w+)[^>]*>: \[None(?:, None)*\]",
                     problem)
    if m:
        kind = m[1].lower()
        return f"{kind} {m[2]} has more {'fields' if kind == 'segment' else 'components'} " \
               f"than HL7 {msg.version} defines"
    m = re.fullmatch(r"warning: Value .* not in table (\w+) in element (\S+)", problem)
    if m:  # drop the value itself: it may be patient data
        return f"warning: value not in table {m[1]} in element {m[2]}"
    return problem


def _problems_from_report(path: str, include_warnings: bool) -> list[str]:
    out: list[str] = []
    with open(path, encoding="utf-8") as report:
        for line in report:
            line = line.strip()
            if line.startswith("Error: "):
                out.append(line[len("Error: "):])
            elif include_warnings and line.startswith("Warning: "):
                out.append("warning: " + line[len("Warning: "):])
    return out


def validate_strict(msg: Message, *, include_warnings: bool = False) -> list[str]:
    """Readable problems hl7apy finds in ``msg``; an empty list means valid.

    Errors are structural (missing required segment/field, unknown or misplaced segment, wrong
    datatype). Warnings (value not in an HL7 table, length over the maximum) are left out unless
    ``include_warnings``: real feeds use local table values and long fields all the time.
    Problems name elements, never values (PHI).
    """
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.exceptions import HL7apyException
    from hl7apy.parser import parse_message
    from hl7apy.validation import Validator

    text = msg.encode()
    try:
        parsed = parse_message(text, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=True)
    except HL7apyException as exc:
        return [f"not valid HL7 {msg.version or '(no version)'}: {exc}"]
    except Exception as exc:  # hl7apy raises plain errors on some malformed input
        return [f"not valid HL7 {msg.version or '(no version)'}: {type(exc).__name__}: {exc}"]
    with tempfile.TemporaryDirectory(prefix="conduit-strict-") as tmp:
        report = os.path.join(tmp, "report.txt")
        try:
            Validator.validate(parsed, report_file=report)
        except HL7apyException:
            pass  # every problem is in the report; the exception is only the first
        except Exception as exc:
            return [f"validation failed: {type(exc).__name__}: {exc}"]
        problems = _problems_from_report(report, include_warnings)
    out: list[str] = []
    for problem in problems:  # keep order, drop repeats (one per repeated segment)
        text = _readable(problem, msg)
        if text not in out:
            out.append(text)
    return out
