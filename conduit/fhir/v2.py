"""Reading HL7 v2 fields as decoded text, component by component, for the FHIR mappings.

``conduit.hl7.message`` hands out raw (escaped) strings; a mapping wants "component 4 of
repetition 2, unescaped". :class:`Field` is one repetition split into components on demand,
:class:`Seg` wraps a segment. Numbering is 1-based, as in the HL7 tables, so a mapping reads like
the IG's segment map (``pid.field(5)[1]`` is XPN.1). Everything absent reads as ``""``.
"""

from __future__ import annotations

from conduit.hl7.escape import unescape
from conduit.hl7.message import Segment, Separators

__all__ = ["Field", "Seg"]


class Field:
    """One repetition of a field (or one component, for its subcomponents), decoded lazily."""

    __slots__ = ("_charset", "_parts", "_seps", "_sub", "raw")

    def __init__(self, raw: str, seps: Separators, charset: str, *, sub: bool = False) -> None:
        self.raw = raw
        self._seps = seps
        self._charset = charset
        self._sub = sub
        self._parts: list[str] | None = None

    def _split(self) -> list[str]:
        parts = self._parts
        if parts is None:
            sep = self._seps.subcomponent if self._sub else self._seps.component
            parts = self._parts = self.raw.split(sep)
        return parts

    def _text(self, raw: str) -> str:
        if self._seps.escape in raw:
            raw = unescape(raw, self._seps, charset=self._charset)
        return raw.strip()

    def __getitem__(self, i: int) -> str:
        """Component ``i`` (its first subcomponent), unescaped and stripped; "" if absent."""
        parts = self._split()
        if i > len(parts):
            return ""
        value = parts[i - 1]
        if not self._sub and self._seps.subcomponent in value:
            value = value.split(self._seps.subcomponent, 1)[0]
        return self._text(value) if value else ""

    def sub(self, i: int, j: int) -> str:
        """Subcomponent ``j`` of component ``i``."""
        return self.part(i)[j]

    def part(self, i: int) -> Field:
        """Component ``i`` as a Field over its subcomponents (for HD/CWE inside a component)."""
        parts = self._split()
        raw = parts[i - 1] if i <= len(parts) else ""
        return Field(raw, self._seps, self._charset, sub=True)

    def text(self) -> str:
        """The whole repetition as text (for ST/TX/FT, where ``^`` never occurs unescaped)."""
        return self._text(self.raw) if self.raw else ""

    def __bool__(self) -> bool:
        raw = self.raw
        return bool(raw) and raw != '""' and bool(raw.strip(self._seps.component
                                                             + self._seps.subcomponent + " "))

    def __repr__(self) -> str:
        return f"<Field {len(self._split())} components>"


class Seg:
    """A segment read through :class:`Field`: ``seg.field(5)``, ``seg.reps(3)``, ``seg[8]``."""

    __slots__ = ("_charset", "name", "segment")

    def __init__(self, segment: Segment, charset: str) -> None:
        self.segment = segment
        self.name = segment.name
        self._charset = charset

    def reps(self, n: int) -> list[Field]:
        """Every non-empty repetition of field ``n``."""
        fields = self.segment.fields
        if n >= len(fields) or not fields[n]:
            return []
        seps = self.segment.separators
        out = [Field(r, seps, self._charset) for r in fields[n].split(seps.repetition)]
        return [f for f in out if f]

    def field(self, n: int) -> Field:
        """The first repetition of field ``n`` (an empty Field if absent)."""
        fields = self.segment.fields
        seps = self.segment.separators
        if n >= len(fields):
            return Field("", seps, self._charset)
        raw = fields[n]
        if seps.repetition in raw:
            raw = raw.split(seps.repetition, 1)[0]
        return Field(raw, seps, self._charset)

    def __getitem__(self, n: int) -> str:
        """Field ``n``, first repetition, first component, as text."""
        return self.field(n)[1]
