"""The acknowledgements one received message gets, from what became of it and what it asked for.

What became of it (:class:`Outcome`) is two facts: *committed* (kept durably, so the sender must
not send it again: the commit ACK's ``CA``, else ``CE``, or ``CR`` when its header was refused)
and *success* (taken for processing: the application ACK's ``AA``, else ``AE``, or ``AR`` when
refused). What it asked for is :class:`~conduit.hl7.acceptance.AckRequest` (MSH-15/16).

Original mode gets exactly one ACK. Enhanced mode gets the commit ACK when MSH-15 asks for it,
then the application ACK when MSH-16 asks for it; a message that was not committed gets no
application ACK (nothing was processed), unless no commit ACK went back: then an application
ACK that MSH-16 allows carries the error, so a refusal always reaches a sender that asked for one.
"""

from __future__ import annotations

from dataclasses import dataclass

from conduit.hl7.acceptance import AckRequest
from conduit.hl7.ack import Location, build_ack_bytes
from conduit.hl7.message import Message

__all__ = ["Outcome", "replies"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a received message (reasons carry no message content)."""

    committed: bool
    success: bool
    reason: str | None = None
    error_code: str = "207"
    location: Location | None = None
    refused: bool = False
    response: bytes | None = None
    """The receiver's own answer (``ack: after-delivery``), sent instead of our ``AA``."""
    commit_sent: bool = False
    """The commit ACK already went back (``ack: after-delivery``: once stored, before delivery)."""


def replies(msg: Message, request: AckRequest, outcome: Outcome) -> list[bytes]:
    """The ACKs to send back for ``msg``, in order (none, one or two)."""
    if not request.enhanced:
        return [_application_ack(msg, outcome)]
    out = []
    if request.wants_accept(outcome.committed) and not outcome.commit_sent:
        if outcome.committed:
            out.append(build_ack_bytes(msg, "CA"))
        else:
            out.append(build_ack_bytes(
                msg, "CR" if outcome.refused else "CE", outcome.reason or "not accepted",
                error_code=outcome.error_code, error_location=outcome.location))
    if (outcome.committed or not out) and request.wants_application(outcome.success):
        out.append(_application_ack(msg, outcome))
    return out


def _application_ack(msg: Message, outcome: Outcome) -> bytes:
    if outcome.success:
        return outcome.response or build_ack_bytes(msg, "AA")
    return build_ack_bytes(msg, "AR" if outcome.refused else "AE",
                           outcome.reason or "not accepted", error_code=outcome.error_code,
                           error_location=outcome.location)
