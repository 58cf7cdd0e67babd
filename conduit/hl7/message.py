"""A lazy, split-based HL7 v2 message: the parser on the hot path.

Parsing only splits segments and reads the separators; a segment is split into fields the first
time it is read, and a field into repetitions the first time one is needed (both cached). That is
what makes parse + a handful of field reads cost microseconds instead of the milliseconds a full
object model costs (python-hl7 builds every level, hl7apy also validates).

Values are raw, still-escaped text (use ``conduit.hl7.escape.unescape`` for display), and a segment
nobody changed is written back exactly as it arrived.

``Segment.fields[n]`` is field ``n`` for every segment, MSH included: for MSH, ``fields[1]`` is the
field separator and ``fields[2]`` the encoding characters (python-hl7 numbers them the same way).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from conduit.core.errors import HL7ParseError
from conduit.hl7.codec import byte_codec, decode, may_be_wide
from conduit.hl7.codec import encode as encode_text
from conduit.hl7.path import FieldPath, parse_path

__all__ = ["Message", "Segment", "Separators", "segment_lines"]

_HEADERS = frozenset({"MSH", "BHS", "FHS"})
# C0 controls that never occur in HL7 text (CR/LF/TAB/VT/FF and the FS..US "space" controls are
# tolerated: line endings and MLLP leftovers).
_BINARY = re.compile(r"[\x00-\x08\x0e-\x1b]")


@dataclass(frozen=True)
class Separators:
    """The delimiters a message declares in MSH-1/MSH-2."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str | None = None  # v2.7 '#', when MSH-2 has 5 characters

    @property
    def encoding_chars(self) -> str:
        """MSH-2 as it should be written for these separators."""
        return (self.component + self.repetition + self.escape + self.subcomponent
                + (self.truncation or ""))


# ERR-2 locations of the header fields a parse error can blame (table 0357 code 102)
_MSH1 = ("MSH", 1, 1)
_MSH2 = ("MSH", 1, 2)


@lru_cache(maxsize=256)
def separators_for(field_sep: str, msh2: str) -> Separators:
    """Separators from MSH-1 and MSH-2, tolerant of the odd MSH-2 values seen in the wild.

    Missing characters take the standard default (as python-hl7 does: ``^~}`` means escape ``}``,
    subcomponent ``&``); a doubled escape (``^~\\\\&``, a string-literal accident) counts once;
    a fifth character is the v2.7 truncation character.
    """
    if not field_sep or field_sep.isalnum() or field_sep.isspace():
        raise HL7ParseError(f"unusable field separator {field_sep!r} after 'MSH'",
                            error_code="102", location=_MSH1)
    enc = msh2
    if len(enc) < 2:
        raise HL7ParseError(
            f"MSH-2 (encoding characters) too short: {enc!r}, need at least component and "
            "repetition separators", error_code="102", location=_MSH2)
    if len(enc) == 5 and enc[2] == enc[3]:
        enc = enc[:3] + enc[4:]
    for ch in enc:
        if ch.isalnum() or ch.isspace():
            raise HL7ParseError(f"MSH-2 (encoding characters) {msh2!r} contains {ch!r}",
                                error_code="102", location=_MSH2)
    if len(enc) > 5:
        raise HL7ParseError(f"MSH-2 (encoding characters) too long: {msh2!r}", error_code="102",
                            location=_MSH2)
    seps = Separators(
        field=field_sep,
        component=enc[0],
        repetition=enc[1],
        escape=enc[2] if len(enc) > 2 else "\\",
        subcomponent=enc[3] if len(enc) > 3 else "&",
        truncation=enc[4] if len(enc) > 4 else None,
    )
    chars = (seps.field, seps.component, seps.repetition, seps.escape, seps.subcomponent)
    if len(set(chars)) != 5 or seps.truncation in chars:
        raise HL7ParseError(f"MSH-1/MSH-2 declare the same separator twice: {field_sep}{msh2!r}",
                            error_code="102", location=_MSH2)
    return seps


def segment_lines(text: str) -> list[str]:
    """The segments of a message (or a batch file), their ends decided by the first line's.

    The standard end is CR: then a bare LF is data (a multi-line OBX-5 some senders do not
    escape), as python-hl7 and hl7apy read it, and an LF right after a CR is a CRLF end. Text
    whose first line ends in LF or CRLF (a file from an editor) has LF or CRLF ends throughout.
    """
    cr = text.find("\r")
    if cr != -1 and text[cr + 1 : cr + 2] != "\n" and text.find("\n", 0, cr) == -1:
        lines = text.split("\r")
        if "\n" in text:
            lines = [line.lstrip("\n") for line in lines]
    else:
        if "\n" in text:
            text = text.replace("\r\n", "\r").replace("\n", "\r")
        lines = text.split("\r")
    return [line for line in lines if line and not line.isspace()]


class Segment:
    """One segment: ``name``, ``raw`` text and lazily split ``fields`` (index n = field n).

    A read view: change a message through ``Message.set``/``delete``, which keep ``raw`` and the
    message text in step; editing ``fields`` in place does not reach ``Message.encode()``.
    """

    __slots__ = ("_fields", "_reps", "name", "raw", "separators")

    def __init__(self, raw: str, separators: Separators) -> None:
        self.raw = raw
        self.separators = separators
        fs = separators.field
        self.name = raw[:3] if raw[3:4] in (fs, "") else raw.split(fs, 1)[0]
        self._fields: list[str] | None = None
        self._reps: dict[int, list[str]] = {}

    def __repr__(self) -> str:
        return f"<Segment {self.name} ({len(self.fields) - 1} fields)>"

    @property
    def fields(self) -> list[str]:
        """Raw fields; ``fields[0]`` is the name, ``fields[n]`` is field n."""
        f = self._fields
        if f is None:
            fs = self.separators.field
            f = self.raw.split(fs)
            if f[0] in _HEADERS:
                f.insert(1, fs)
            self._fields = f
        return f

    def _repetitions(self, n: int) -> list[str]:
        reps = self._reps.get(n)
        if reps is None:
            value = self.fields[n]
            if self.name in _HEADERS and n <= 2:
                reps = [value]
            else:
                reps = value.split(self.separators.repetition)
            self._reps[n] = reps
        return reps

    def value(self, p: FieldPath) -> str | None:
        """Raw text at the field/repetition/component/subcomponent of ``p``; None if absent."""
        n = p.field
        if n is None:
            return self.raw
        fields = self._fields or self.fields
        if n >= len(fields):
            return None
        reps = self._reps.get(n) or self._repetitions(n)
        r = p.repetition or 1
        if r > len(reps):
            return None
        v = reps[r - 1]
        c = p.component
        if c is None or (self.name in _HEADERS and n <= 2):
            return v if c in (None, 1) else None
        cs = self.separators.component
        if c == 1 and cs not in v:
            comp = v
        else:
            comps = v.split(cs)
            if c > len(comps):
                return None
            comp = comps[c - 1]
        s = p.subcomponent
        if s is None:
            return comp
        subs = comp.split(self.separators.subcomponent)
        return subs[s - 1] if s <= len(subs) else None

    def get(self, path: str, default: str = "") -> str:
        """Value at a field path relative to this segment: ``"3[2].1"`` or ``"PID-3[2].1"``."""
        p = parse_path(path if path[:1].isalpha() else f"{self.name}-{path}")
        v = self.value(p)
        return v if v else default

    # -- modification (through Message.set / Message.delete) -------------------------------

    def _encode(self) -> None:
        fs = self.separators.field
        fields = self.fields
        if fields[0] in _HEADERS:
            self.raw = fields[0] + fs + fs.join(fields[2:])
        else:
            self.raw = fs.join(fields)
        self._reps.clear()

    def put(self, p: FieldPath, value: str) -> None:
        """Store ``value`` (raw) at ``p``, padding missing fields/repetitions/components."""
        n = p.field
        assert n is not None
        if self.name in _HEADERS and n <= 2:
            raise ValueError(f"{self.name}-{n} holds the separators and cannot be set")
        fields = self.fields
        if n >= len(fields):
            fields.extend([""] * (n + 1 - len(fields)))
        seps = self.separators
        reps = fields[n].split(seps.repetition)
        r = p.rep_n
        if r > len(reps):
            reps.extend([""] * (r - len(reps)))
        if p.component is None:
            reps[r - 1] = value
        else:
            comps = reps[r - 1].split(seps.component)
            c = p.component
            if c > len(comps):
                comps.extend([""] * (c - len(comps)))
            if p.subcomponent is None:
                comps[c - 1] = value
            else:
                subs = comps[c - 1].split(seps.subcomponent)
                s = p.subcomponent
                if s > len(subs):
                    subs.extend([""] * (s - len(subs)))
                subs[s - 1] = value
                comps[c - 1] = seps.subcomponent.join(subs)
            reps[r - 1] = seps.component.join(comps)
        fields[n] = seps.repetition.join(reps)
        self._encode()


class Message:
    """A parsed HL7 v2 message; see the module docstring for what is lazy and what is raw."""

    __slots__ = ("_encoding", "_index", "_raw", "_segs", "changed", "separators")

    separators: Separators

    def __init__(self, segments: list[str], separators: Separators,
                 encoding: str | None = None) -> None:
        self._raw = segments
        self._segs: list[Segment | None] = [None] * len(segments)
        self._index: dict[str, list[int]] | None = None
        self.separators = separators
        self._encoding = encoding
        self.changed = False
        """True once ``set``/``delete`` or a new ``encoding`` changed the message: until then
        the bytes it was parsed from are the message, and are what is forwarded."""

    @property
    def encoding(self) -> str:
        """Python codec for ``to_bytes()``: the one the bytes were decoded with, else MSH-18's."""
        if self._encoding is None:
            self._encoding = _codec_of(self._raw[0], self.separators)
        return self._encoding

    @encoding.setter
    def encoding(self, codec: str) -> None:
        if codec != self._encoding:
            self.changed = True
        self._encoding = codec

    # -- parsing ------------------------------------------------------------------------------

    @classmethod
    def parse(cls, data: bytes | str) -> Message:
        """Parse bytes (charset from MSH-18) or text; raise HL7ParseError saying why not."""
        if isinstance(data, str):
            return cls._from_text(data)
        if isinstance(data, bytearray | memoryview):
            data = bytes(data)
        if not isinstance(data, bytes):
            raise HL7ParseError(f"expected bytes or str, got {type(data).__name__}")
        if data.isascii() and not may_be_wide(data):
            # every 8-bit charset reads ASCII alike; MSH-18 is read only when .encoding is
            return cls._from_text(data.decode("ascii"))
        return cls._from_text(*decode(data))

    @classmethod
    def _from_text(cls, text: str, encoding: str | None = None) -> Message:
        if text[:3] != "MSH":
            text = text.removeprefix("\ufeff").lstrip()
            if text[:3] != "MSH":
                if not text:
                    raise HL7ParseError("empty message", error_code="100", location=("MSH", 1))
                if _BINARY.search(text[:64]):
                    raise HL7ParseError("message is not text (binary data)", error_code="102")
                raise HL7ParseError(
                    f"message does not start with an MSH segment (starts with {text[:3]!r})",
                    error_code="100", location=("MSH", 1))
        if len(text) < 4:
            raise HL7ParseError("MSH segment is truncated before the field separator",
                                error_code="102", location=_MSH1)
        fs = text[3]
        if fs in "\r\n":
            raise HL7ParseError("MSH segment has no field separator", error_code="102",
                                location=_MSH1)
        segments = segment_lines(text)
        msh = segments[0]
        # Binary data shows as NUL (a memchr over the whole text) or as control characters in
        # the header. Other stray controls further on are kept as data: tolerant, and a full
        # regex scan would cost more than the whole parse.
        if "\x00" in text or _BINARY.search(msh):
            raise HL7ParseError("message is not text (contains control characters)",
                                error_code="102")
        end = msh.find(fs, 4)
        seps = separators_for(fs, msh[4:] if end == -1 else msh[4:end])
        return cls(segments, seps, encoding)

    # -- reading ------------------------------------------------------------------------------

    def _build_index(self) -> dict[str, list[int]]:
        index: dict[str, list[int]] = {}
        fs = self.separators.field
        for i, raw in enumerate(self._raw):
            name = raw[:3] if raw[3:4] in (fs, "") else raw.split(fs, 1)[0]
            index.setdefault(name, []).append(i)
        self._index = index
        return index

    def _segment_at(self, i: int) -> Segment:
        seg = self._segs[i]
        if seg is None:
            seg = self._segs[i] = Segment(self._raw[i], self.separators)
        return seg

    def _find(self, name: str, n: int) -> Segment | None:
        if n == 1 and name == "MSH":
            return self._segment_at(0)
        index = self._index
        if index is None:
            # most reads want an early segment: scan and stop instead of indexing everything
            prefix = name + self.separators.field
            for i, raw in enumerate(self._raw):
                if raw.startswith(prefix) or raw == name:
                    n -= 1
                    if not n:
                        return self._segment_at(i)
            return None
        found = index.get(name)
        if found is None or n > len(found):
            return None
        return self._segment_at(found[n - 1])

    def get(self, path: str, default: str = "") -> str:
        """Raw (escaped) text at ``path``; ``default`` when absent or empty.

        A field path without a component gives the whole repetition (components joined raw); a
        segment path (``PID``, ``OBX[2]``) gives the segment's raw text.
        """
        p = parse_path(path)
        seg = self._find(p.segment, p.seg_n)
        if seg is None:
            return default
        v = seg.value(p)
        return v if v else default

    def __getitem__(self, path: str) -> str:
        return self.get(path)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and self.get(path) != ""

    def repetitions(self, path: str) -> list[str]:
        """Every repetition of a field (``PID-3`` -> one raw string per identifier)."""
        p = parse_path(path)
        if p.field is None:
            raise ValueError(f"invalid HL7 path {path!r}: repetitions() needs a field")
        seg = self._find(p.segment, p.seg_n)
        if seg is None or p.field >= len(seg.fields):
            return []
        out = []
        for r in range(1, len(seg._repetitions(p.field)) + 1):
            v = seg.value(p._replace(repetition=r))
            out.append(v or "")
        return out if any(out) else []

    def segments(self, name: str | None = None) -> list[Segment]:
        """All segments in order, or those named ``name``."""
        if name is None:
            return [self._segment_at(i) for i in range(len(self._raw))]
        index = self._index if self._index is not None else self._build_index()
        return [self._segment_at(i) for i in index.get(name, ())]

    def segment_names(self) -> list[str]:
        """Segment ids in order (``["MSH", "EVN", "PID", ...]``)."""
        names = [""] * len(self._raw)
        index = self._index if self._index is not None else self._build_index()
        for name, positions in index.items():
            for i in positions:
                names[i] = name
        return names

    def __len__(self) -> int:
        return len(self._raw)

    def __repr__(self) -> str:
        return f"<Message {self.message_type} {self.control_id!r} ({len(self._raw)} segments)>"

    # -- writing ------------------------------------------------------------------------------

    def set(self, path: str, value: str) -> None:
        """Put raw ``value`` at ``path``; pads fields/repetitions/components as needed.

        The segment must exist (KeyError otherwise: adding segments is a structural change this
        API does not guess at). ``value`` is inserted as-is: escape it first if it is free text.
        """
        p = parse_path(path)
        if p.field is None:
            raise ValueError(f"invalid HL7 path {path!r}: set() needs a field")
        seg = self._find(p.segment, p.seg_n)
        if seg is None:
            raise KeyError(f"no segment {p.segment}[{p.seg_n}] in message")
        seg.put(p, value)
        self._raw[self._position(seg)] = seg.raw
        self.changed = True

    def delete(self, path: str) -> None:
        """``ZPI`` deletes every ZPI, ``ZPI[2]`` the second; a field path empties that element."""
        p = parse_path(path)
        if p.field is not None:
            seg = self._find(p.segment, p.seg_n)
            if seg is not None and seg.value(p) is not None:
                self.set(path, "")
            return
        if p.segment == "MSH":
            raise ValueError("the MSH segment cannot be deleted")
        index = self._index if self._index is not None else self._build_index()
        found = index.get(p.segment, [])
        drop = set(found) if p.segment_index is None else set(found[p.seg_n - 1 : p.seg_n])
        if not drop:
            return
        self._raw = [r for i, r in enumerate(self._raw) if i not in drop]
        self._segs = [s for i, s in enumerate(self._segs) if i not in drop]
        self._index = None
        self.changed = True

    def _position(self, seg: Segment) -> int:
        for i, s in enumerate(self._segs):
            if s is seg:
                return i
        raise LookupError("segment is not part of this message")  # pragma: no cover

    def encode(self) -> str:
        """Segments joined by CR with a trailing CR; untouched segments as they arrived."""
        return "\r".join(self._raw) + "\r"

    def to_bytes(self) -> bytes:
        """``encode()`` in the message's charset (``self.encoding``)."""
        return encode_text(self.encode(), self.encoding)

    def __str__(self) -> str:
        return self.encode()

    # -- convenience (raw text) ---------------------------------------------------------------

    @property
    def control_id(self) -> str:
        """MSH-10."""
        return self.get("MSH-10")

    @property
    def message_type(self) -> str:
        """``"ADT^A01"`` from MSH-9.1/9.2 (``"ADT"`` with no trigger), always joined with ``^``."""
        code, trigger = self.get("MSH-9.1"), self.get("MSH-9.2")
        return f"{code}^{trigger}" if trigger else code

    @property
    def message_code(self) -> str:
        """MSH-9.1, e.g. ``ADT``."""
        return self.get("MSH-9.1")

    @property
    def trigger_event(self) -> str:
        """MSH-9.2, e.g. ``A01``."""
        return self.get("MSH-9.2")

    @property
    def message_structure(self) -> str:
        """MSH-9.3, e.g. ``ADT_A01`` (v2.3.1+)."""
        return self.get("MSH-9.3")

    @property
    def version(self) -> str:
        """MSH-12.1, e.g. ``2.5.1``."""
        return self.get("MSH-12.1")

    @property
    def sending_app(self) -> str:
        """MSH-3 (whole first repetition)."""
        return self.get("MSH-3")

    @property
    def sending_facility(self) -> str:
        """MSH-4."""
        return self.get("MSH-4")

    @property
    def receiving_app(self) -> str:
        """MSH-5."""
        return self.get("MSH-5")

    @property
    def receiving_facility(self) -> str:
        """MSH-6."""
        return self.get("MSH-6")

    @property
    def timestamp(self) -> str:
        """MSH-7 (message date/time, raw)."""
        return self.get("MSH-7")

    @property
    def processing_id(self) -> str:
        """MSH-11.1 (P, T, D)."""
        return self.get("MSH-11.1")

    @property
    def charset(self) -> str:
        """MSH-18 as declared (first repetition); ``encoding`` is the codec actually used."""
        return self.get("MSH-18")


def _codec_of(msh: str, seps: Separators) -> str:
    """Codec for a text message from its MSH-18; utf-8 when absent or unknown."""
    if msh.count(seps.field) < 17:
        return "utf-8"
    parts = msh.split(seps.field, 18)
    charset = parts[17].split(seps.repetition, 1)[0].split(seps.component, 1)[0]
    return byte_codec(charset) or "utf-8"
