"""Field paths such as ``PID-3[2].4.1``: parsed once, cached, shared by every message.

Grammar (1-based, as HL7 numbers things)::

    SEG[n]-field[rep].component.subcomponent

``SEG`` is a segment id (``PID``, ``ZPI``); ``[n]`` picks the n-th segment of that name (default 1);
``field`` is the field number (``MSH-1`` is the field separator itself, ``MSH-2`` the encoding
characters); ``[rep]`` picks a field repetition (default 1). Everything after the segment is
optional, so ``ZPI`` and ``OBX[2]`` are paths too (they address whole segments).

Channel files hold these strings, so a bad path raises ValueError with a message an analyst can
act on, and the channel loader reports it. :data:`PathText` (:mod:`conduit.hl7.pathtext`) is
the same grammar as a config field: a model that names a field checks it at load, not on the
first message.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

__all__ = ["FieldPath", "check_path", "parse_path"]

_PATH = re.compile(
    r"(?P<seg>[A-Z][A-Z0-9]{2})(?:\[(?P<segn>\d+)\])?"
    r"(?:-(?P<field>\d+)(?:\[(?P<rep>\d+)\])?"
    r"(?:\.(?P<comp>\d+)(?:\.(?P<sub>\d+))?)?)?"
)

_FORM = "expected SEG[n]-field[rep].component.subcomponent, e.g. PID-5.1, OBX[2]-5, PID-3[2].4.1"


class FieldPath(NamedTuple):
    """A parsed path; ``None`` means 'not given' (segment index and repetition default to 1)."""

    segment: str
    segment_index: int | None
    field: int | None
    repetition: int | None
    component: int | None
    subcomponent: int | None

    @property
    def seg_n(self) -> int:
        """1-based index of the segment among those of its name."""
        return self.segment_index or 1

    @property
    def rep_n(self) -> int:
        """1-based repetition number."""
        return self.repetition or 1

    def __str__(self) -> str:
        out = self.segment
        if self.segment_index is not None:
            out += f"[{self.segment_index}]"
        if self.field is not None:
            out += f"-{self.field}"
            if self.repetition is not None:
                out += f"[{self.repetition}]"
            if self.component is not None:
                out += f".{self.component}"
                if self.subcomponent is not None:
                    out += f".{self.subcomponent}"
        return out


def _num(text: str | None, what: str, path: str) -> int | None:
    if text is None:
        return None
    value = int(text)
    if value < 1:
        raise ValueError(f"invalid HL7 path {path!r}: {what} numbers start at 1, got {value}")
    return value


@lru_cache(maxsize=4096)
def parse_path(path: str) -> FieldPath:
    """Parse ``path`` into a FieldPath; raise ValueError saying what is wrong."""
    if not isinstance(path, str):
        raise ValueError(f"invalid HL7 path {path!r}: not a string")
    m = _PATH.fullmatch(path)
    if m is None:
        stripped = path.strip()
        if stripped != path and _PATH.fullmatch(stripped):
            raise ValueError(f"invalid HL7 path {path!r}: remove the surrounding spaces")
        if _PATH.fullmatch(path.upper()):
            raise ValueError(f"invalid HL7 path {path!r}: segment ids are upper case")
        raise ValueError(f"invalid HL7 path {path!r}: {_FORM}")
    fp = FieldPath(
        m["seg"],
        _num(m["segn"], "segment", path),
        _num(m["field"], "field", path),
        _num(m["rep"], "repetition", path),
        _num(m["comp"], "component", path),
        _num(m["sub"], "subcomponent", path),
    )
    if fp.segment == "MSH" and fp.field in (1, 2) and (fp.component or 1) > 1:
        raise ValueError(
            f"invalid HL7 path {path!r}: MSH-{fp.field} holds separators and has no components")
    return fp


def check_path(text: str) -> str:
    """Return ``text`` if it is a valid path, else raise ValueError saying why."""
    parse_path(text)
    return text
