"""What a stage changed: two HL7 v2 messages compared segment by segment, then field by field
inside each changed segment, for the message page's highlighted diff.

Segments are aligned with :class:`difflib.SequenceMatcher` (an inserted ZPI or a dropped NTE
stays one added or removed row); a segment replaced by one of the same name is shown as a pair
whose differing fields are marked, so "PID-5 changed" is what the operator sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from difflib import SequenceMatcher
from itertools import zip_longest

from conduit.hl7.message import segment_lines


@dataclass(slots=True)
class Cell:
    """One field of a segment line, ``changed`` when it differs from the other side."""

    text: str
    changed: bool = False


@dataclass(slots=True)
class Row:
    """``same``, ``changed`` (both sides), ``removed`` (before only) or ``added`` (after only)."""

    op: str
    before: list[Cell] = field(default_factory=list)
    after: list[Cell] = field(default_factory=list)


@dataclass(slots=True)
class Diff:
    title: str
    rows: list[Row]

    @property
    def changed(self) -> bool:
        return any(r.op != "same" for r in self.rows)


def _lines(content: bytes) -> list[str]:
    text = content.decode("utf-8", errors="replace")
    return [s for s in segment_lines(text) if s.strip()]


def _separator(lines: list[str]) -> str:
    first = lines[0] if lines else ""
    return first[3] if first.startswith(("MSH", "FHS", "BHS")) and len(first) > 3 else "|"


def _pair(before: str, after: str, separator: str) -> Row:
    old, new = before.split(separator), after.split(separator)
    cells_old, cells_new = [], []
    for a, b in zip_longest(old, new):
        if a is not None:
            cells_old.append(Cell(a, a != b))
        if b is not None:
            cells_new.append(Cell(b, a != b))
    return Row("changed", cells_old, cells_new)


def _whole(line: str, separator: str, changed: bool) -> list[Cell]:
    return [Cell(part, changed) for part in line.split(separator)]


def diff(title: str, before: bytes, after: bytes) -> Diff:
    """Segment rows of ``before`` → ``after``."""
    old, new = _lines(before), _lines(after)
    separator = _separator(old or new)
    rows: list[Row] = []
    matcher = SequenceMatcher(None, old, new, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            rows += [Row("same", _whole(line, separator, False)) for line in old[i1:i2]]
            continue
        removed, added = old[i1:i2], new[j1:j2]
        # pair segments of the same name in order; the rest are whole additions or removals
        while removed or added:
            if removed and added and removed[0][:3] == added[0][:3]:
                rows.append(_pair(removed.pop(0), added.pop(0), separator))
            elif removed and (not added or removed[0][:3] not in {a[:3] for a in added}):
                rows.append(Row("removed", _whole(removed.pop(0), separator, True)))
            else:
                rows.append(Row("added", after=_whole(added.pop(0), separator, True)))
    return Diff(title, rows)
