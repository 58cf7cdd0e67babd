"""HL7 v2 batches on the wire: telling a batch from a message, and the batch ACK.

A sender that wraps messages in FHS/BHS ... BTS/FTS expects its answer in the same shape (HL7 v2
chapter 2, batch protocol): a BHS whose BHS-12 names its BHS-11, one ACK per message, and a BTS
with the count (inside FHS/FTS when the sender used them). Each message is stored and routed on
its own, and each ACK says what became of it, so the sender resends only what was not accepted.
A frame holding several MSH messages without an envelope is answered with their ACKs one after
another in one frame.

Splitting works on bytes decoded as latin-1, which maps each byte to one character and back, so
every message keeps its own bytes (and charset) exactly.

On the wire the envelope is checked strictly: an FHS without its FTS, a BHS without its BTS, or
a BTS-1/FTS-1 count that does not match what arrived means messages were lost or added on the
way, so the whole batch is refused (kept as ERROR for replay) with a batch answer naming what
could be read: the batch control id (BHS-11, else FHS-11) and the sender (BHS-3/4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from conduit.core.errors import HL7ParseError
from conduit.hl7.ack import build_ack_for_unparseable, new_control_id
from conduit.hl7.batch import split_messages
from conduit.hl7.escape import escape
from conduit.hl7.message import Separators, segment_lines

_WS = b"\xef\xbb\xbf \t\r\n"


@dataclass(slots=True)
class Batch:
    messages: list[bytes]
    file_header: str | None
    batch_header: str | None

    def describe(self) -> str:
        """'batch B-42' (BHS-11, else FHS-11), for reasons that must say which batch."""
        return _describe(self.batch_header, self.file_header)


class BatchError(HL7ParseError):
    """A batch whose envelope is damaged: refused whole (table 0357 code 100)."""


def _fields(header: str | None) -> list[str]:
    if header is None or len(header) < 4:
        return []
    return header.split(header[3])


def _field(header: str | None, n: int) -> str:
    """BHS-n / FHS-n (n >= 3), raw."""
    fields = _fields(header)
    return fields[n - 1] if n - 1 < len(fields) else ""


def _describe(batch_header: str | None, file_header: str | None) -> str:
    control = _field(batch_header, 11) or _field(file_header, 11)
    name = f"batch {control}" if control else "batch (no BHS-11)"
    head = batch_header if batch_header is not None else file_header
    app, facility = (_first_component(_field(head, n), head) for n in (3, 4))
    sender = f"{app} at {facility}" if app and facility else app or facility
    return f"{name} from {sender}" if sender else name


def _first_component(value: str, header: str | None) -> str:
    """HD's namespace id: BHS-3.1 (the header's MSH-2-like field names the separator)."""
    cs = _field(header, 2)[:1] or "^"
    return value.split(cs, 1)[0]


_TAG = re.compile(r"(FHS|BHS|BTS|FTS|MSH)(?=[^A-Za-z0-9]|$)")


def check_envelope(text: str) -> None:
    """Raise BatchError when trailers are missing or misplaced or a count does not match
    (FHS/BHS text: over MLLP, and in the file source, where a file cut short must not be half
    read)."""
    lines = segment_lines(text)  # segment ends as the messages have them (an LF may be data)
    tags = [(m[1], line) for line in lines if (m := _TAG.match(line.lstrip("\ufeff")))]
    in_file = in_batch = False
    batches = messages = 0
    seen = {"BTS": 0, "FTS": 0}
    for tag, line in tags:
        if tag == "MSH":
            messages += 1
        elif tag == "FHS":
            in_file = True
        elif tag == "BHS":
            if in_batch:
                raise BatchError("BHS inside an open batch (no BTS)", error_code="100",
                                 location=("BHS", 1))
            in_batch, messages = True, 0
        elif tag == "BTS":
            seen["BTS"] += 1
            if not in_batch:
                raise BatchError("BTS without its BHS", error_code="100",
                                 location=("BTS", seen["BTS"]))
            _check_count(line, messages, "BTS", seen["BTS"], "messages")
            in_batch = False
            batches += 1
        else:  # FTS
            seen["FTS"] += 1
            if in_batch:
                raise BatchError("BHS without its BTS before the FTS", error_code="100",
                                 location=("BTS", seen["BTS"] + 1))
            if not in_file:
                raise BatchError("FTS without its FHS", error_code="100", location=("FTS", 1))
            _check_count(line, batches, "FTS", 1, "batches")
            in_file = False
    if in_batch:
        raise BatchError("BHS without its BTS (the batch may be cut short)", error_code="100",
                         location=("BTS", seen["BTS"] + 1))
    if in_file:
        raise BatchError("FHS without its FTS (the file may be cut short)", error_code="100",
                         location=("FTS", 1))


def _check_count(line: str, found: int, tag: str, sequence: int, what: str) -> None:
    fields = line.split(line[3]) if len(line) > 3 else []
    count = fields[1].strip() if len(fields) > 1 else ""
    if count and count != str(found):
        raise BatchError(f"{tag}-1 says {count} {what}, {found} arrived", error_code="100",
                         location=(tag, sequence, 1))


def _header(text: str, tag: str) -> str | None:
    for line in segment_lines(text):
        if line.startswith(tag):
            return line
        if line.startswith("MSH"):
            return None
    return None


def split_batch(payload: bytes) -> Batch | None:
    """The messages of a batch or multi-message payload; None for a single message.

    Raises BatchError when the envelope is damaged (content outside a message, a batch opened
    twice, a header without its trailer, a count that does not match).
    """
    head = payload.lstrip(_WS)[:3]
    several = b"\rMSH" in payload or b"\nMSH" in payload
    if head not in (b"FHS", b"BHS") and (head != b"MSH" or not several):
        return None
    text = payload.decode("latin-1")
    try:
        messages = split_messages(text)
    except HL7ParseError as exc:
        raise BatchError(str(exc), error_code="100") from exc
    if head != b"MSH":
        check_envelope(text)
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


def batch_ack(batch: Batch, acks: list[bytes], comment: str | None = None, *,
              force_envelope: bool = False) -> bytes:
    """The answer to a batch: its ACKs in a matching envelope (or bare, without one, unless
    ``force_envelope``)."""
    from datetime import datetime

    body = b"".join(a if a.endswith(b"\r") else a + b"\r" for a in acks)
    if batch.batch_header is None and batch.file_header is None and not force_envelope:
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


def batch_reject(payload: bytes, error: HL7ParseError) -> bytes:
    """The answer to a batch refused whole: an envelope answering the sender's (FHS/BHS with
    -12 naming its -11, as in :func:`batch_ack`) around one ``AR`` whose MSA-2 is the batch
    control id and whose ERR says why (table 0357 code, location), BTS-2 repeating the reason.

    Everything named is what could be read; a header too damaged to read gives an empty field.
    """
    text = payload.decode("latin-1")
    file_header, batch_header = _header(text, "FHS"), _header(text, "BHS")
    head = batch_header if batch_header is not None else file_header
    reason = f"{_describe(batch_header, file_header)} refused: {error}"
    sep = head[3] if head is not None and len(head) > 3 and not head[3].isalnum() else "|"
    first = next((line for line in re.split(r"[\r\n]", text) if line.startswith("MSH")), "")
    msh = first.split(first[3]) if len(first) > 3 else []

    def at(n: int) -> str:  # MSH-n of the batch's first message, when one can be read
        return msh[n - 1] if n - 1 < len(msh) and first[3] == sep else ""

    control = _field(batch_header, 11) or _field(file_header, 11)
    encoding = _field(head, 2) if head is not None and len(head) > 3 else "^~\\&"
    stand_in = sep.join(["MSH", encoding or "^~\\&", _field(head, 3), _field(head, 4),
                         _field(head, 5), _field(head, 6), "", "", "ACK", control,
                         at(11) or "P", at(12) or "2.5"])
    ack = build_ack_for_unparseable(stand_in.encode("latin-1"), reason,
                                    error_code=error.error_code,
                                    error_location=error.location) or b""
    comment = escape(reason, Separators(field=sep))
    return batch_ack(Batch([], file_header, batch_header), [ack], comment=comment,
                     force_envelope=True)
