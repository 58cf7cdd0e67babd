"""Reading HL7 v2 fields as decoded text, component by component, for the FHIR mappings.

``conduit.hl7.message`` hands out raw (escaped) strings; a mapping wants "component 4 of
repetition 2, unescaped". :class:`Field` is one repetition split into components on demand,
:class:`Seg` wraps a segment. Numbering is 1-based, as in the HL7 tables, so a mapping reads like
the IG's segment map (``pid.field(5)[1]`` is XPN.1). Everything absent reads as ``""``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from conduit.hl7.escape import unescape
from conduit.hl7.message import Segment, Separators

__all__ = ["PADDED", "Field", "Seg"]

PADDED = 21
"""A decoded Field has at least this many entries (components 1-20 and the unused 0)."""
_BLANKS = [""] * PADDED
_PADS = [("",) * (PADDED - n) for n in range(PADDED)]  # what a list of n entries lacks
_SUB_BLANKS = _BLANKS[2:]


class Field:
    """One repetition of a field (or one component, for its subcomponents), decoded lazily."""

    __slots__ = ("_charset", "_decoded", "_parts", "_seps", "is_component", "raw")

    def __init__(self, raw: str, seps: Separators, charset: str, *, sub: bool = False) -> None:
        self.raw = raw
        self._seps = seps
        self._charset = charset
        # True for one component read over its subcomponents (made by :meth:`part`); an
        # attribute, not a property: entities key every practitioner/location on it
        self.is_component = sub
        self._parts: list[str] | None = None
        self._decoded: list[str] | None = None

    def _split(self) -> list[str]:
        parts = self._parts
        if parts is None:
            sep = self._seps.subcomponent if self.is_component else self._seps.component
            parts = self._parts = self.raw.split(sep)
        return parts

    def _text(self, raw: str) -> str:
        if self._seps.escape in raw:
            raw = unescape(raw, self._seps, charset=self._charset)
        return raw.strip()

    def __getitem__(self, i: int) -> str:
        """Component ``i`` (its first subcomponent), unescaped and stripped; "" if absent."""
        decoded = self._decoded or self._decode()
        return decoded[i] if 0 < i < len(decoded) else ""

    def components(self) -> list[str]:
        """Every component as ``self[i]`` reads it, at index i (index 0 is ""), with at least
        :data:`PADDED` entries: data-type maps read 5 to 18 components of one field, and
        indexing a list costs less than as many ``self[i]`` calls."""
        return self._decoded or self._decode()

    def _decode(self) -> list[str]:
        # mappings read the same components again and again: decode once
        raw, seps = self.raw, self._seps
        esc = seps.escape
        if self.is_component:
            sep, amp = seps.subcomponent, None
        else:
            sep, amp = seps.component, seps.subcomponent
        if esc not in raw:  # most fields
            if amp is not None and amp in raw:  # each component's first subcomponent
                raw = _cutter(sep, amp)("", raw)
            decoded = (sep + raw).split(sep)
            # whitespace to strip: str.isspace characters but " " are unprintable, and a
            # space inside a component ("Mary Ann", "12 Main St") is kept
            if " " in raw:
                if (raw[0] == " " or raw[-1] == " " or " " + sep in raw or sep + " " in raw
                        or not raw.isprintable()):
                    decoded = [v.strip() for v in decoded]
            elif not raw.isprintable():
                decoded = [v.strip() for v in decoded]
        else:  # each component's first subcomponent, unescaped and stripped (as _text does)
            parts = self._parts or self._split()
            if amp is not None and amp in raw:
                parts = [v.split(amp, 1)[0] if amp in v else v for v in parts]
            charset = self._charset
            decoded = [""]
            decoded += [unescape(v, seps, charset=charset).strip() if esc in v else v.strip()
                        for v in parts]
        n = len(decoded)
        if n < PADDED:
            decoded += _PADS[n]
        self._decoded = decoded
        return decoded

    def sub(self, i: int, j: int) -> str:
        """Subcomponent ``j`` of component ``i``."""
        subs = self.subcomponents(i)
        return subs[j] if 0 < j < len(subs) else ""

    def subcomponents(self, i: int) -> list[str]:
        """``self.part(i).components()`` (read-only), without a Field when component ``i`` is
        empty, as most are."""
        parts = self._parts or self._split()
        raw = parts[i - 1] if i <= len(parts) else ""
        if not raw:
            return _BLANKS
        seps = self._seps
        if seps.escape not in raw:  # what part(i) decodes to, without the Field
            amp = seps.subcomponent
            if amp not in raw:  # one plain subcomponent (an authority "HOSP", a unit "mg")
                out = ["", raw if " " not in raw and raw.isprintable() else raw.strip()]
                out += _SUB_BLANKS
                return out
            out = (amp + raw).split(amp)  # HD "HOSP&1.2.3&ISO", DR "20240101&20241231"
            if " " in raw or not raw.isprintable():
                out = [v.strip() for v in out]
            n = len(out)
            if n < PADDED:
                out += _PADS[n]
            return out
        return self.part(i).components()

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
        if not raw:
            return False
        if raw[0].isalnum():  # the usual case: something before any separator
            return True
        return raw != '""' and bool(raw.strip(self._seps.component
                                              + self._seps.subcomponent + " "))

    def __repr__(self) -> str:
        return f"<Field {len(self._split())} components>"


class Seg:
    """A segment read through :class:`Field`: ``seg.field(5)``, ``seg.reps(3)``, ``seg[8]``.

    Fields are made once per segment (maps read the same field several times)."""

    __slots__ = ("_charset", "_fields", "_raw", "_reps", "_seps", "name", "segment")

    def __init__(self, segment: Segment, charset: str) -> None:
        self.segment = segment
        self.name = segment.name
        self._charset = charset
        self._raw = segment.fields  # split once; a conversion only reads the segment
        self._seps = segment.separators
        self._fields: dict[int, Field] = {}
        self._reps: dict[int, list[Field]] = {}

    def reps(self, n: int) -> list[Field]:
        """Every non-empty repetition of field ``n``."""
        found = self._reps.get(n)
        if found is None:
            fields = self._raw
            if n >= len(fields) or not fields[n]:
                found = []
            elif self._seps.repetition not in fields[n]:  # one repetition: field(n)'s Field
                first = self.field(n)
                # bool(first), its usual case (text before any separator) without the call
                found = [first] if fields[n][0].isalnum() or first else []
            else:
                seps, charset = self._seps, self._charset
                found = []
                for r in fields[n].split(seps.repetition):
                    if r:  # "~~": no Field for an empty repetition
                        f = Field(r, seps, charset)
                        if r[0].isalnum() or f:  # bool(f), its usual case without the call
                            found.append(f)
            self._reps[n] = found
        return found

    def field(self, n: int) -> Field:
        """The first repetition of field ``n`` (an empty Field if absent)."""
        found = self._fields.get(n)
        if found is None:
            fields = self._raw
            seps = self._seps
            raw = fields[n] if n < len(fields) else ""
            if not raw:  # maps read many fields a sender leaves empty
                found = self._fields[n] = _EMPTY
                return found
            if seps.repetition in raw:
                raw = raw.split(seps.repetition, 1)[0]
            found = self._fields[n] = Field(raw, seps, self._charset)
        return found

    def __getitem__(self, n: int) -> str:
        """Field ``n``, first repetition, first component, as text.

        Most fields a map reads are absent or plain text, or have a plain first component:
        those answer without building a :class:`Field` (maps read many optional fields that a
        sender leaves empty)."""
        fields = self._raw
        if n >= len(fields):
            return ""
        raw = fields[n]
        if not raw:
            return ""
        seps = self._seps
        if seps.repetition in raw:
            raw = raw.split(seps.repetition, 1)[0]
        if seps.component in raw:
            raw = raw.split(seps.component, 1)[0]
        if seps.escape in raw or seps.subcomponent in raw:
            return self.field(n)[1]
        return raw.strip()


def _cutter(sep: str, amp: str) -> Callable[[str, str], str]:
    """``sub("", raw)`` drops every subcomponent after a component's first (one regex pass
    instead of a split per component)."""
    cut = _CUTTERS.get(sep + amp)
    if cut is None:
        cut = _CUTTERS[sep + amp] = re.compile(
            f"{re.escape(amp)}[^{re.escape(sep)}]*").sub
    return cut


_CUTTERS: dict[str, Callable[[str, str], str]] = {}


_EMPTY = Field("", Separators(), "utf-8")
"""The absent field, shared by every segment: empty text reads the same whatever the separators
and charset (every component and subcomponent ""), and a Field never changes once made."""
_EMPTY.components()
