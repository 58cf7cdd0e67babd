"""HL7 v2 batches on the wire: telling a batch from a message, and the batch ACK.

A sender that wraps messages in FHS/BHS ... BTS/FTS expects its answer in the same shape (HL7 v2
chapter 2, batch protocol): a BHS whose BHS-12 names its BHS-11, one ACK per message, and a BTS
with the count (inside FHS/FTS when the sender used them). Each message is stored and routed on
its own, and each ACK says what became of it, so the sender resends only what was not accepted.
A frame holding several MSH messages without an envelope is answered with their ACKs one after
another in one frame.

Splitting works on bytes decoded as latin-1, which maps each byte to one character and back, so
every message keeps its own bytes (and charset) exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from conduit.hl7.ack import new_control_id
from conduit.hl7.batch import split_messages

_WS = b"\xef\xbb\xbf \t\r\n"


@dataclass(slots=True)
class Batch:
    messages: list[bytes]
    file_header: str | None
    batch_header: str | None


def _header(text: str, tag: str) -> str | None:
    for line in text.replace("\r\n", "\r").replace("\n", "\r").split("\r"):
        if line.startswith(tag):
            return line
        if line.startswith("MSH"):
            return None
    return None


def split_batch(payload: bytes) -> Batch | None:
    """The messages of a batch or multi-message payload; None for a single message.

    Raises HL7ParseError when the envelope is damaged (content outside a message, a batch
    opened twice).
    """
    head = payload.lstrip(_WS)[:3]
    several = b"\rMSH" in payload or b"\nMSH" in payload
    if head not in (b"FHS", b"BHS") and (head != b"MSH" or not several):
        return None
    text = payload.decode("latin-1")
    messages = split_messages(text)
    if head == b"MSH" and len(messages) < 2:
        return None
    return Batch([m.encode("latin-1") for m in messages], _header(text, "FHS"),
                 _header(text, "BHS"))


def _envelope(header: str | None, tag: str, stamp: str) -> str:
    """An answering FHS/BHS: sender and receiver swapped, -12 naming the original's -11."""
    if header is None:
        return f"{tag}|^~\\&|||||{stamp}||||{new_control_id()}"
    sep = header[3]
    fields = header.split(sep)
    fields += [""] * (12 - len(fields))
    answer = [tag, fields[1] or "^~\\&", fields[4], fields[5], fields[2], fields[3], stamp,
              "", fields[8], "", new_control_id(), fields[10]]
    return sep.join(answer)


def batch_ack(batch: Batch, acks: list[bytes], comment: str | None = None) -> bytes:
    """The answer to a batch: its ACKs in a matching envelope (or bare, without one)."""
    from datetime import datetime

    body = b"".join(a if a.endswith(b"\r") else a + b"\r" for a in acks)
    if batch.batch_header is None and batch.file_header is None:
        return body
    stamp = datetime.now().strftime("%Y%m%d%H%M%S")
    sep = (batch.batch_header or batch.file_header or "BHS|")[3]
    lines = []
    if batch.file_header is not None:
        lines.append(_envelope(batch.file_header, "FHS", stamp))
    lines.append(_envelope(batch.batch_header, "BHS", stamp))
    head = ("\r".join(lines) + "\r").encode("latin-1")
    trailer = f"BTS{sep}{len(acks)}" + (f"{sep}{comment}" if comment else "") + "\r"
    if batch.file_header is not None:
        trailer += f"FTS{sep}1\r"
    return head + body + trailer.encode("latin-1")
