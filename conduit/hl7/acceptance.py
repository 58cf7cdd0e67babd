"""HL7 v2 chapter 2 acceptance: which acknowledgements a message asks for, and whether its header
lets a receiver take it at all.

Original mode (MSH-15 and MSH-16 both empty): one application ACK, ``AA``/``AE``/``AR``.
Enhanced mode (either valued): a commit (accept) ACK ``CA``/``CE``/``CR`` when MSH-15 asks for
it, then an application ACK when MSH-16 asks for it; each under table 0155 (``AL`` always,
``NE`` never, ``ER`` on error or reject only, ``SU`` on success only). An empty MSH-15 or MSH-16
in enhanced mode asks for no ACK of that kind (as HAPI reads it). An ACK message is never
acknowledged itself, whatever its header says (it would start an endless exchange).

The header check refuses what no step could route safely, with the HL7 table 0357 code and the
field it blames: MSH-9, MSH-10 or MSH-12 missing (101), MSH-15/16 not in table 0155 (103), a
message type or event the channel does not take (200, 201), a processing id it does not take
(202), a version that is not HL7 v2 (203).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from conduit.hl7.message import Message

__all__ = [
    "ACK_CONDITIONS",
    "AckRequest",
    "Assessment",
    "Refusal",
    "assess",
    "check_header",
    "error_code_for_problem",
    "is_acknowledgement",
    "next_ack",
    "requested_acks",
]

ACK_CONDITIONS = frozenset({"AL", "NE", "ER", "SU"})  # HL7 table 0155
PROCESSING_IDS = frozenset({"D", "P", "T"})  # HL7 table 0103
_VERSION = re.compile(r"2\.\d+(\.\d+)*")


@lru_cache(maxsize=64)
def _is_v2(version: str) -> bool:
    return _VERSION.fullmatch(version) is not None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a message cannot be accepted: table 0357 code, a reason, the ERR-2 location."""

    error_code: str
    reason: str
    location: tuple[str | int, ...] | None = None


@dataclass(frozen=True, slots=True)
class AckRequest:
    """The acknowledgements a message asks for (MSH-15, MSH-16; None for an empty field)."""

    accept: str | None = None
    application: str | None = None

    @property
    def enhanced(self) -> bool:
        return self.accept is not None or self.application is not None

    def wants_accept(self, success: bool) -> bool:
        """Whether a commit ACK with this outcome goes back (enhanced mode only)."""
        return _wanted(self.accept, success)

    def wants_application(self, success: bool) -> bool:
        """Whether an application ACK with this outcome goes back (always in original mode)."""
        return not self.enhanced or _wanted(self.application, success)


def _wanted(condition: str | None, success: bool) -> bool:
    return condition == "AL" or (condition == "SU" and success) or (
        condition == "ER" and not success)


def next_ack(request: AckRequest | None, codes: list[str]) -> tuple[bool, bool]:
    """For a sender: (an ACK may still come, it certainly will) after the ACKs ``codes``.

    ``request`` is what the message sent asked for (None: original mode, exactly one ACK; an
    ACK message gets none: do not ask). ``ER`` and ``SU`` make an ACK depend on the outcome,
    so it *may* come; the sender decides how long silence takes to mean it will not.
    """
    if request is None or not request.enhanced:
        return not codes, not codes
    if not codes:  # the commit ACK, else perhaps the application ACK
        certain = request.accept == "AL" or (
            request.accept in (None, "NE") and request.application == "AL")
        return request.accept not in (None, "NE") or request.application not in (None, "NE"), \
            certain
    if len(codes) == 1 and codes[0] == "CA":  # then the application ACK as MSH-16 asks
        return request.application not in (None, "NE"), request.application == "AL"
    return False, False


class _Header:
    """MSH field values from one split of the segment (``Message.get`` per field costs ~1.5 us;
    this runs for every message received). Values are the first repetition, stripped."""

    __slots__ = ("_cs", "_fields", "_rs")

    def __init__(self, msg: Message) -> None:
        seps = msg.separators
        self._cs, self._rs = seps.component, seps.repetition
        self._fields = msg.get("MSH").split(seps.field)  # _fields[k] is MSH-(k+1), k >= 1

    def _value(self, n: int) -> str:
        value = self._fields[n - 1] if n - 1 < len(self._fields) else ""
        return value.split(self._rs, 1)[0] if self._rs in value else value

    def field(self, n: int) -> str:
        return self._value(n).strip()

    def component(self, n: int, c: int) -> str:
        value = self._value(n)
        if self._cs not in value:
            return value.strip() if c == 1 else ""
        parts = value.split(self._cs, c)
        return parts[c - 1].strip() if c <= len(parts) else ""


@dataclass(slots=True)
class Assessment:
    """What a received message asks for and whether it can be taken, from one look at its MSH."""

    request: AckRequest
    refusal: Refusal | None
    acknowledgement: bool
    """An ACK message: stored and routed, never acknowledged."""


def assess(msg: Message, *, message_types: list[str] | None = None,
           processing_ids: list[str] | None = None) -> Assessment:
    """:func:`requested_acks`, :func:`check_header` and :func:`is_acknowledgement` at once."""
    header = _Header(msg)
    request, refusal = _requested(header)
    refusal = refusal or _check(header, message_types, processing_ids)
    return Assessment(request, refusal, header.component(9, 1).upper() == "ACK")


def asked_for(msg: Message) -> AckRequest | None:
    """For a sender: the ACKs ``msg`` asks its receiver for, as :func:`assess` reads them,
    None for an ACK message (which asks for none); without ``assess``'s header checks, which
    are the receiver's to make (this runs for every message sent)."""
    header = _Header(msg)
    return None if header.component(9, 1).upper() == "ACK" else _requested(header)[0]


def is_acknowledgement(msg: Message) -> bool:
    """True for an ACK message (MSH-9.1 ``ACK``): stored and routed, never acknowledged."""
    return _Header(msg).component(9, 1).upper() == "ACK"


def requested_acks(msg: Message) -> tuple[AckRequest, Refusal | None]:
    """The ACKs ``msg`` asks for, and a refusal (103) when MSH-15/16 is not a table 0155 code.

    A sender whose wish cannot be read is answered always (``AL``): silence would leave it
    waiting for an ACK that never comes.
    """
    return _requested(_Header(msg))


def _requested(header: _Header) -> tuple[AckRequest, Refusal | None]:
    accept, application = header.field(15).upper(), header.field(16).upper()
    if not accept and not application:
        return _ORIGINAL, None
    for field, value in ((15, accept), (16, application)):
        if value and value not in ACK_CONDITIONS:
            return AckRequest("AL", "AL"), Refusal(
                "103", f"MSH-{field} (acknowledgment type) is not a table 0155 code",
                ("MSH", 1, field))
    return AckRequest(accept or None, application or None), None


_ORIGINAL = AckRequest()


def check_header(msg: Message, *, message_types: list[str] | None = None,
                 processing_ids: list[str] | None = None) -> Refusal | None:
    """Why ``msg``'s header cannot be accepted, or None when it can.

    ``message_types`` (``ADT``, ``ADT^A01``; None: any) and ``processing_ids`` (None: any of
    table 0103, or empty) are what the channel takes.
    """
    return _check(_Header(msg), message_types, processing_ids)


def _check(header: _Header, message_types: list[str] | None,
           processing_ids: list[str] | None) -> Refusal | None:
    for field, name in ((9, "message type"), (10, "message control id"), (12, "version id")):
        if not header.component(field, 1):
            return Refusal("101", f"required field MSH-{field} ({name}) is missing",
                           ("MSH", 1, field))
    code, event = header.component(9, 1), header.component(9, 2)
    if message_types is not None:
        wanted = [t.split("^", 1) for t in message_types]
        if not any(w[0] == code for w in wanted):
            return Refusal("200", f"message type {code!r} is not accepted here",
                           ("MSH", 1, 9, 1))
        if not any(w[0] == code and (len(w) == 1 or w[1] == event) for w in wanted):
            return Refusal("201", f"event {code}^{event} is not accepted here", ("MSH", 1, 9, 2))
    processing = header.component(11, 1).upper()  # table 0103 codes, in any case
    if processing_ids is not None:
        if processing not in (p.upper() for p in processing_ids):
            return Refusal("202", f"processing id {processing!r} is not accepted here",
                           ("MSH", 1, 11))
    elif processing and processing not in PROCESSING_IDS:
        return Refusal("202", f"processing id {processing!r} is not in HL7 table 0103",
                       ("MSH", 1, 11))
    version = header.component(12, 1)
    if not _is_v2(version):
        return Refusal("203", f"version {version!r} is not HL7 v2", ("MSH", 1, 12))
    return None


_PROBLEM_CODES = (  # first match wins; the wording is hl7apy's (see conduit/hl7/strict.py)
    ("not in table", "103"),
    ("required", "101"),
    ("missing", "101"),
    ("message structure", "200"),
    ("more fields", "102"),
    ("more components", "102"),
    ("datatype", "102"),
    ("data type", "102"),
    ("invalid value", "102"),
    ("length", "102"),
    ("format", "102"),
    ("limit exceeded", "100"),
)


def error_code_for_problem(problem: str) -> str:
    """The table 0357 code for a validation problem (``validate: strict``): 101 a required
    element missing, 102 a bad value, 103 a value outside its table, 200 a message structure
    the version does not define, 100 a segment or group out of place or repeated too often;
    207 when the problem says nothing more precise."""
    text = problem.lower()
    for word, code in _PROBLEM_CODES:
        if word in text:
            return code
    if "segment" in text or "children" in text or "structure" in text or "element" in text:
        return "100"
    return "207"
