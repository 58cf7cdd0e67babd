"""Files and streams holding several HL7 v2 messages, with or without FHS/BHS batch envelopes.

The envelopes (FHS/BHS/BTS/FTS) carry nothing the engine routes on, so they are dropped and each
message is handled on its own. Envelope structure is still checked: content outside any message
or a batch/file opened twice means the file is damaged, and guessing would route half-messages.
"""

from __future__ import annotations

from conduit.core.errors import HL7ParseError
from conduit.hl7.message import segment_lines

__all__ = ["is_batch", "split_messages"]

_ENVELOPE = ("FHS", "BHS", "BTS", "FTS")


def _lines(text: str) -> list[str]:
    return segment_lines(text.removeprefix("\ufeff"))


def is_batch(text: str) -> bool:
    """True if ``text`` starts with an FHS or BHS envelope."""
    return text.removeprefix("\ufeff").lstrip()[:3] in ("FHS", "BHS")


def split_messages(text: str) -> list[str]:
    """Split into message texts (CR-separated, trailing CR), dropping batch envelopes.

    Raises HL7ParseError for a segment before the first MSH of a message, or an FHS/BHS opened
    while one is already open; an empty input gives an empty list.
    """
    messages: list[list[str]] = []
    current: list[str] | None = None
    file_open = batch_open = False
    for number, line in enumerate(_lines(text), start=1):
        if line[:3] == "MSH":
            current = [line]
            messages.append(current)
            continue
        tag = line[:3] if line[3:4] and not line[3:4].isalnum() else ""
        if tag in _ENVELOPE:
            current = None
            if tag == "FHS":
                if file_open:
                    raise HL7ParseError(f"segment {number}: FHS inside an open file (no FTS)")
                file_open = True
            elif tag == "BHS":
                if batch_open:
                    raise HL7ParseError(f"segment {number}: BHS inside an open batch (no BTS)")
                batch_open = True
            elif tag == "BTS":
                batch_open = False
            else:
                file_open = batch_open = False
            continue
        if current is None:
            name = line[:3]
            raise HL7ParseError(f"segment {number} ({name}) is not inside a message (no MSH)")
        current.append(line)
    return ["\r".join(m) + "\r" for m in messages]
