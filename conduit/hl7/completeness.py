"""Whether an HL7 v2 file (or stream) looks cut short: what a file poller can check before it
calls a message good.

A writer that pauses leaves a file whose size and age look settled; its messages parse. What
still tells a cut:

- the last segment has no segment terminator (every segment, the last included, ends with CR;
  a cut at any byte but a segment's end leaves one without it);
- a batch envelope that is not closed (BHS without BTS, FHS without FTS), or whose trailer
  counts other messages (BTS-1) or batches (FTS-1) than it holds: a cut exactly at a segment's
  end inside a batch;
- for senders that leave the last CR off (some do; ``require_final_terminator=False``): a last
  segment whose name is cut, or that lacks a field HL7 requires of it (``REQUIRED``); a segment
  not in that table cannot be judged and passes.

A single message cut exactly at a segment's end is not detectable from its bytes: only a done
marker, a rename into place or a batch trailer tells that a file is whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["REQUIRED", "Incomplete", "incomplete_reason"]


@dataclass(frozen=True, slots=True)
class Incomplete:
    reason: str
    """Readable, without content."""
    ended: bool
    """The writer finished (a trailer is there, but counts otherwise): waiting cannot help."""

REQUIRED: dict[str, tuple[int, ...]] = {
    "MSH": (9, 10, 11, 12),
    "EVN": (2,),
    "PID": (3, 5),
    "PV1": (2,),
    "ORC": (1,),
    "OBR": (4,),
    "OBX": (3, 11),
    "AL1": (3,),
    "DG1": (1,),
}
"""Fields required (usage R in HL7 v2.5) of common segments: a last segment without one of them
was cut, when the sender leaves the final CR off."""

_SEGMENT_NAME = re.compile(r"[A-Z][A-Z0-9]{2}")
_STARTS = ("MSH", "FHS", "BHS")


def incomplete_reason(data: bytes, *,
                      require_final_terminator: bool = True) -> Incomplete | None:
    """Why ``data`` looks cut short, or None. Not HL7 v2: None."""
    text = data.decode("latin-1").removeprefix("\xef\xbb\xbf").lstrip(" \t\r\n")
    if text[:3] not in _STARTS:
        return None
    body = text.rstrip(" \t")
    lines = [line for line in body.replace("\r\n", "\r").replace("\n", "\r").split("\r")
             if line.strip()]
    if not lines:
        return None
    last = lines[-1]
    if not body.endswith(("\r", "\n")):
        if require_final_terminator:
            return Incomplete(f"the file ends inside a segment (the last one, {_name(last)}, "
                              "has no segment terminator): cut short by its writer?", False)
        reason = _last_segment_reason(last, text[3:4])
        if reason:
            return Incomplete(reason, False)
    return _envelope_reason(lines)


def _name(line: str) -> str:
    name = line[:3]
    return name if _SEGMENT_NAME.fullmatch(name) else "unnamed"


def _last_segment_reason(line: str, separator: str) -> str | None:
    name = line[:3]
    if not _SEGMENT_NAME.fullmatch(name) or (len(line) > 3 and line[3] != separator):
        return "the last segment's name is cut: cut short by its writer?"
    fields = line.split(separator)
    offset = 1 if name == "MSH" else 0  # MSH-1 is the separator itself
    for number in REQUIRED.get(name, ()):
        index = number - offset
        if index >= len(fields) or not fields[index].strip():
            return (f"the last segment, {name}, has no {name}-{number} (required) and no "
                    "segment terminator: cut short by its writer?")
    return None


def _envelope_reason(lines: list[str]) -> Incomplete | None:
    """Batch envelopes closed, and their trailers' counts matching what they hold."""
    file_open = batch_open = False
    batches = messages = 0
    for line in lines:
        tag = line[:3]
        sep = line[3:4]
        if tag == "FHS":
            file_open, batches = True, 0
        elif tag == "BHS":
            batch_open, messages = True, 0
            batches += 1
        elif tag == "MSH":
            messages += 1
        elif tag == "BTS" and batch_open:
            batch_open = False
            count = _count(line, sep)
            if count is not None and count != messages:
                return Incomplete(f"the batch trailer (BTS-1) counts {count} messages, the "
                                  f"batch holds {messages}: cut short or damaged", True)
        elif tag == "FTS" and file_open:
            file_open = batch_open = False  # the writer got to the end (a BTS left out)
            count = _count(line, sep)
            if count is not None and batches and count != batches:  # no BHS: nothing to count
                return Incomplete(f"the file trailer (FTS-1) counts {count} batches, the "
                                  f"file holds {batches}: cut short or damaged", True)
    if batch_open:
        return Incomplete("the batch has no trailer (BHS without BTS): cut short by its "
                          "writer?", False)
    if file_open:
        return Incomplete("the file has no trailer (FHS without FTS): cut short by its "
                          "writer?", False)
    return None


def _count(line: str, separator: str) -> int | None:
    fields = line.split(separator) if separator else [line]
    value = fields[1].strip() if len(fields) > 1 else ""
    return int(value) if value.isdigit() else None
