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

from conduit.hl7.message import Message

__all__ = [
    "ACK_CONDITIONS",
    "AckRequest",
    "Refusal",
    "check_header",
    "error_code_for_problem",
    "is_acknowledgement",
    "requested_acks",
]

ACK_CONDITIONS = frozenset({"AL", "NE", "ER", "SU"})  # HL7 table 0155
PROCESSING_IDS = frozenset({"D", "P", "T"})  # HL7 table 0103
_VERSION = re.compile(r"2\.\d+(\.\d+)*")


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


def is_acknowledgement(msg: Message) -> bool:
    """True for an ACK message (MSH-9.1 ``ACK``): stored and routed, never acknowledged."""
    return msg.message_code.strip().upper() == "ACK"


def requested_acks(msg: Message) -> tuple[AckRequest, Refusal | None]:
    """The ACKs ``msg`` asks for, and a refusal (103) when MSH-15/16 is not a table 0155 code.

    A sender whose wish cannot be read is answered always (``AL``): silence would leave it
    waiting for an ACK that never comes.
    """
    values = []
    for field in (15, 16):
        value = msg.get(f"MSH-{field}").strip().upper()
        if value and value not in ACK_CONDITIONS:
            return AckRequest("AL", "AL"), Refusal(
                "103", f"MSH-{field} (acknowledgment type) is not a table 0155 code",
                ("MSH", 1, field))
        values.append(value or None)
    return AckRequest(values[0], values[1]), None


def check_header(msg: Message, *, message_types: list[str] | None = None,
                 processing_ids: list[str] | None = None) -> Refusal | None:
    """Why ``msg``'s header cannot be accepted, or None when it can.

    ``message_types`` (``ADT``, ``ADT^A01``; None: any) and ``processing_ids`` (None: any of
    table 0103, or empty) are what the channel takes.
    """
    for field, name in ((9, "message type"), (10, "message control id"), (12, "version id")):
        if not msg.get(f"MSH-{field}.1").strip():
            return Refusal("101", f"required field MSH-{field} ({name}) is missing",
                           ("MSH", 1, field))
    code, event = msg.message_code.strip(), msg.trigger_event.strip()
    if message_types is not None:
        wanted = [t.split("^", 1) for t in message_types]
        if not any(w[0] == code for w in wanted):
            return Refusal("200", f"message type {code!r} is not accepted here",
                           ("MSH", 1, 9, 1))
        if not any(w[0] == code and (len(w) == 1 or w[1] == event) for w in wanted):
            return Refusal("201", f"event {code}^{event} is not accepted here", ("MSH", 1, 9, 2))
    processing = msg.get("MSH-11.1").strip()
    if processing_ids is not None:
        if processing not in processing_ids:
            return Refusal("202", f"processing id {processing!r} is not accepted here",
                           ("MSH", 1, 11))
    elif processing and processing not in PROCESSING_IDS:
        return Refusal("202", f"processing id {processing!r} is not in HL7 table 0103",
                       ("MSH", 1, 11))
    version = msg.version.strip()
    if not _VERSION.fullmatch(version):
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
