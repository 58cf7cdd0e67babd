"""HL7 v2 acknowledgements: build the ACK a sender expects, read the ACK a receiver sends.

The ACK mirrors the sender's header (apps/facilities swapped, same delimiters, version and
charset) because strict senders match on those. MSA-3 and ERR carry only the reason we were
given, escaped and shortened: never message content (PHI).

Both directions sit on the MLLP hot path (one ACK built per message received, one read per message
sent), so the common cases skip the general machinery: a plain ``AA``/``CA`` is assembled from one
split of the sender's MSH, ``build_ack_bytes`` returns the wire bytes without re-parsing the ACK,
and ``parse_ack`` / ``message_control_id`` scan plain ASCII CR-separated bytes directly. Anything
unusual (non-ASCII, LF line ends, escapes in MSA-3, any error) takes the full-parse path, so the
results, and the errors, are those of ``Message.parse``.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from functools import lru_cache

from conduit.core.errors import HL7ParseError
from conduit.hl7.codec import decode
from conduit.hl7.codec import encode as encode_text
from conduit.hl7.escape import escape, unescape
from conduit.hl7.message import Message, Separators, separators_for

__all__ = [
    "ACK_CODES",
    "build_ack",
    "build_ack_bytes",
    "build_ack_for_unparseable",
    "message_control_id",
    "new_control_id",
    "parse_ack",
]

ACK_CODES = frozenset({"AA", "AE", "AR", "CA", "CE", "CR"})
_ERROR_CODES = frozenset({"AE", "AR", "CE", "CR"})
_TEXT_MAX = 80  # MSA-3 is ST(80) in v2.3-v2.6
_DEFAULT_ERROR = "207"  # HL7 table 0357: application internal error
Location = tuple[str | int, ...]
"""Where an error is: segment id, its sequence (1 = first), then field, component... positions."""
_STD = Separators()
# Message.parse's test for binary data in the MSH segment (conduit/hl7/message.py); text that
# str.isprintable() accepts has no control characters at all, so it never needs the regex.
_BINARY = re.compile(r"[\x00-\x08\x0e-\x1b]")


_ID_PREFIX = os.urandom(6).hex().upper()  # 12 random hex characters per process
_ID_COUNTER = itertools.count(1)


def new_control_id() -> str:
    """A 20-character unique MSH-10 (fits every version's length limit).

    A random per-process prefix and a counter: unique like random ids, without a system call per
    ACK (os.urandom cost ~34 µs an ACK under load).
    """
    return f"{_ID_PREFIX}{next(_ID_COUNTER) % 16**8:08X}"


# (second, that second as "%Y%m%d%H%M%S"), replaced whole so a reader never sees a mixed pair
_stamp: list[tuple[int, str]] = [(-1, "")]


def _now() -> str:
    """Local time as HL7 DTM to the second, formatted once a second (strftime cost ~1.4 us)."""
    now = time.time()
    second, text = _stamp[0]
    if int(now) != second:
        text = time.strftime("%Y%m%d%H%M%S", time.localtime(now))
        _stamp[0] = (int(now), text)
    return text


@lru_cache(maxsize=64)
def _version_tuple(version: str) -> tuple[int, ...]:
    nums = re.findall(r"\d+", version)
    return tuple(int(n) for n in nums) if nums else (9,)


def _clean(text: str) -> str:
    """One line, at most _TEXT_MAX characters (before escaping, so escapes are never cut)."""
    text = " ".join(text.split())
    return text if len(text) <= _TEXT_MAX else text[: _TEXT_MAX - 3] + "..."


def _assemble_segments(
    seps: Separators,
    msh2: str,
    header: dict[int, str],
    code: str,
    acked_id: str,
    text: str | None,
    error_code: str | None,
    version: str,
    error_location: Location | None = None,
) -> list[str]:
    """ACK segments from MSH field values (raw), MSA and ERR content (plain)."""
    fs, cs, ss = seps.field, seps.component, seps.subcomponent
    last = max(header)
    msh = ["MSH", msh2] + [header.get(n, "") for n in range(3, last + 1)]
    reason = _clean(text) if text else ""
    segments = [fs.join(msh)]
    msa = ["MSA", code, acked_id]
    if reason:
        msa.append(escape(reason, seps))
    segments.append(fs.join(msa))
    if code in _ERROR_CODES:
        err_code = error_code or _DEFAULT_ERROR
        err_text = escape(reason or "error", seps)
        where = [escape(str(part), seps) for part in error_location or ()]
        if _version_tuple(version) >= (2, 5):
            # ERR-2 is ERL: segment^sequence^field^repetition^component^subcomponent
            erl = cs.join([*where[:3], "", *where[3:]] if len(where) > 3 else where)
            cwe = cs.join([escape(err_code, seps), err_text, "HL70357"])
            segments.append(fs.join(["ERR", "", erl, cwe, "E"]))
        else:
            # v2.1-2.4: ERR-1 is ELD: segment^sequence^field^code(CE, as subcomponents)
            where = [*where[:3], "", "", ""][:3]
            ce = ss.join([escape(err_code, seps), err_text, "HL70357"])
            segments.append(fs.join(["ERR", cs.join(where) + cs + ce]))
    return segments


def _assemble(
    seps: Separators,
    msh2: str,
    header: dict[int, str],
    code: str,
    acked_id: str,
    text: str | None,
    error_code: str | None,
    version: str,
    error_location: Location | None = None,
) -> str:
    """Build ACK text from MSH field values (raw), MSA and ERR content (plain)."""
    return "\r".join(_assemble_segments(seps, msh2, header, code, acked_id, text, error_code,
                                         version, error_location)) + "\r"


def _msh9(seps: Separators, trigger: str, version: str) -> str:
    return _msh9_for(seps.component, trigger, version)


@lru_cache(maxsize=256)
def _msh9_for(cs: str, trigger: str, version: str) -> str:
    if not trigger:
        return "ACK"
    if _version_tuple(version) >= (2, 3, 1):
        return f"ACK{cs}{trigger}{cs}ACK"
    return f"ACK{cs}{trigger}"


def _segments_general(msg: Message, code: str, text: str | None, error_code: str | None,
                      control_id: str | None, error_location: Location | None = None
                      ) -> list[str]:
    """The ACK's segments, every case (field by field through ``Message.get``)."""
    seps = msg.separators
    version = msg.get("MSH-12")
    header = {
        3: msg.get("MSH-5"),
        4: msg.get("MSH-6"),
        5: msg.get("MSH-3"),
        6: msg.get("MSH-4"),
        7: _now(),
        9: _msh9(seps, msg.get("MSH-9.2"), msg.version),
        10: control_id or new_control_id(),
        11: msg.get("MSH-11"),
        12: version,
    }
    charset = msg.get("MSH-18")
    if charset:
        header[18] = charset
    return _assemble_segments(seps, msg.get("MSH-2"), header, code, msg.control_id, text,
                              error_code, msg.version, error_location)


def _segments_plain(msg: Message, code: str, control_id: str | None) -> list[str]:
    """The ACK's segments when there is no reason (AA/CA): the same output as
    ``_segments_general``, from one split of the MSH instead of ten ``Message.get`` calls."""
    seps = msg.separators
    fs, rs, cs = seps.field, seps.repetition, seps.component
    raw = msg.get("MSH")
    f = raw.split(fs)  # f[k] is MSH-(k+1) for k >= 1 (MSH-1 is the separator itself)
    if len(f) < 18:
        f += [""] * (18 - len(f))
    msh2 = f[1]
    if raw.count(rs) != msh2.count(rs):  # a field repeats: Message.get reads the first one
        f[2:] = [v.split(rs, 1)[0] for v in f[2:]]
    msh9 = f[8]
    trigger = msh9.split(cs, 2)[1] if cs in msh9 else ""  # MSH-9.2
    version = f[11]  # MSH-12; msg.version is MSH-12.1
    header = ["MSH", msh2, f[4], f[5], f[2], f[3], _now(), "",
              _msh9_for(cs, trigger, version.split(cs, 1)[0]),
              control_id or new_control_id(), f[10], version]
    if f[17]:  # MSH-18, the charset
        header += ["", "", "", "", "", f[17]]
    return [fs.join(header), f"MSA{fs}{code}{fs}{f[9]}"]


def _segments(msg: Message, code: str, text: str | None, error_code: str | None,
              control_id: str | None, error_location: Location | None = None) -> list[str]:
    if code not in ACK_CODES:
        raise ValueError(f"ACK code must be one of {sorted(ACK_CODES)}, got {code!r}")
    if not text and code not in _ERROR_CODES:
        return _segments_plain(msg, code, control_id)
    return _segments_general(msg, code, text, error_code, control_id, error_location)


def build_ack(
    msg: Message,
    code: str,
    text: str | None = None,
    *,
    error_code: str | None = None,
    control_id: str | None = None,
    error_location: Location | None = None,
) -> Message:
    """The ACK for ``msg`` with MSA-1 ``code``; AE/AR/CE/CR also get an ERR segment.

    ``text`` is a short reason (no message content); ``error_code`` is from HL7 table 0357
    (default 207, application internal error) and ``error_location`` where the error is
    (segment id, sequence, field[, component...]: ERR-2, or ERR-1 before v2.5);
    ``control_id`` overrides the generated MSH-10.
    """
    text_out = "\r".join(_segments(msg, code, text, error_code, control_id,
                                    error_location)) + "\r"
    return Message._from_text(text_out, msg.encoding)


def build_ack_bytes(
    msg: Message,
    code: str,
    text: str | None = None,
    *,
    error_code: str | None = None,
    control_id: str | None = None,
    error_location: Location | None = None,
) -> bytes:
    """``build_ack(...).to_bytes()``, without parsing the ACK back into a Message.

    The ACK's text is encoded as it is whenever parsing it could not change it (no CR/LF inside
    a value, nothing Message.parse calls binary); otherwise it goes through ``build_ack``, so the
    bytes, or the HL7ParseError, are always the same.
    """
    segments = _segments(msg, code, text, error_code, control_id, error_location)
    text_out = "\r".join(segments) + "\r"
    if (text_out.count("\r") != len(segments) or "\n" in text_out or "\x00" in text_out
            or (not segments[0].isprintable() and _BINARY.search(segments[0]))):
        return Message._from_text(text_out, msg.encoding).to_bytes()
    return encode_text(text_out, msg.encoding)


def _lenient_header(text: str) -> tuple[Separators, str, list[str]] | None:
    """Separators, MSH-2 and raw MSH fields from text whose MSH is at least readable."""
    text = text.removeprefix("\ufeff").lstrip()
    if not text.startswith("MSH") or len(text) < 5:
        return None
    fs = text[3]
    if fs.isalnum() or fs.isspace():
        return None
    line = re.split(r"[\r\n]", text, maxsplit=1)[0]
    fields = line.split(fs)
    fields.insert(1, fs)
    msh2 = fields[2] if len(fields) > 2 else ""
    try:
        seps = separators_for(fs, msh2)
    except HL7ParseError:
        seps = Separators(field=fs) if fs not in _STD.encoding_chars else _STD
        msh2 = seps.encoding_chars
    return seps, msh2, fields


def build_ack_for_unparseable(raw: bytes, reason: str, *, code: str = "AR",
                              error_code: str | None = None,
                              error_location: Location | None = None) -> bytes | None:
    """Best-effort AR (or ``code``: CR in enhanced mode) for bytes we cannot accept as they are.

    If the bytes start with an MSH whose field separator is usable, the AR mirrors what can be
    read (apps swapped, MSA-2 = their MSH-10, their version and charset), replacing a broken
    MSH-2 with the standard one. Otherwise a generic AR (standard delimiters, v2.5, empty MSA-2)
    is returned: the sender learns the message was rejected and keeps it, which beats silence.
    That includes empty ``raw`` (e.g. a framing error, where no payload is at hand), so today
    this never returns None; the Optional stays in the signature so callers keep handling it.
    Whether to answer at all (an empty keep-alive frame, say) is the caller's decision.
    """
    text, codec = decode(raw)
    found = _lenient_header(text)
    if found is None:
        header = {7: _now(), 9: "ACK", 10: new_control_id(), 11: "P", 12: "2.5"}
        out = _assemble(_STD, _STD.encoding_chars, header, code, "", reason, error_code, "2.5",
                        error_location)
        return encode_text(out, "utf-8")
    seps, msh2, f = found

    def at(n: int) -> str:
        return f[n] if n < len(f) else ""

    version = at(12)
    header = {
        3: at(5), 4: at(6), 5: at(3), 6: at(4), 7: _now(),
        9: _msh9(seps, _component(at(9), seps, 2), version),
        10: new_control_id(), 11: at(11), 12: version,
    }
    if at(18):
        header[18] = at(18)
    out = _assemble(seps, msh2, header, code, _component(at(10), seps, 1), reason, error_code,
                    _component(version, seps, 1), error_location)
    return encode_text(out, codec)


def _component(value: str, seps: Separators, n: int) -> str:
    parts = value.split(seps.repetition, 1)[0].split(seps.component)
    return parts[n - 1] if n <= len(parts) else ""


def _plain_msh(data: bytes) -> tuple[str, Separators] | None:
    """(MSH line, separators) of bytes that Message.parse would read as plain ASCII starting
    with "MSH"; None when anything is unusual (let Message.parse decide). Raises the
    HL7ParseError Message.parse would raise when only the separators are wrong."""
    if type(data) is not bytes or data[:3] != b"MSH" or not data.isascii() or b"\x00" in data:
        return None
    end = data.find(b"\r")
    line = data if end == -1 else data[:end]
    if len(line) < 4 or b"\n" in line:
        return None
    msh = line.decode("ascii")
    if not msh.isprintable() and _BINARY.search(msh):  # isprintable: a quick "no controls"
        return None
    fs = msh[3]
    stop = msh.find(fs, 4)
    return msh, separators_for(fs, msh[4:] if stop == -1 else msh[4:stop])


def message_control_id(data: bytes) -> str | None:
    """MSH-10 of a raw message, as ``Message.parse(data).control_id`` reads it, without the
    parse when the header is plain ASCII; None when the bytes are not a message we can parse."""
    try:
        found = _plain_msh(data)
        if found is None:
            return Message.parse(data).control_id
    except HL7ParseError:
        return None
    msh, seps = found
    fields = msh.split(seps.field, 10)  # fields[k] is MSH-(k+1)
    return fields[9].split(seps.repetition, 1)[0] if len(fields) > 9 else ""


def parse_ack(data: bytes) -> tuple[str, str, str]:
    """(MSA-1 code, MSA-2 control id, MSA-3 text unescaped) of an ACK; HL7ParseError if none.

    Plain ASCII, CR-separated ACKs (nearly all) are read by a scan for the first MSA segment;
    anything else, and every error, goes through Message.parse.
    """
    found = _plain_msh(data) if type(data) is bytes and b"\n" not in data else None
    if found is not None:
        seps = found[1]
        fs = seps.field
        text = data.decode("ascii")
        at = text.find("\rMSA")
        while at != -1 and text[at + 4:at + 5] not in (fs, "\r", ""):
            at = text.find("\rMSA", at + 4)
        if at != -1:
            stop = text.find("\r", at + 4)
            fields = (text[at + 1:] if stop == -1 else text[at + 1:stop]).split(fs, 4)
            fields += [""] * (4 - len(fields))
            rs = seps.repetition
            code = fields[1].split(rs, 1)[0].strip().upper()
            if code:  # else the error below, naming the ACK's MSH-10
                reason = fields[3].split(rs, 1)[0]
                if seps.escape in reason:  # \Xhh\ escapes decode in the ACK's MSH-18 charset
                    reason = unescape(reason, seps, charset=Message([found[0]], seps).encoding)
                return code, fields[2].split(rs, 1)[0], reason
    return _parse_ack_message(data)


def _parse_ack_message(data: bytes) -> tuple[str, str, str]:
    """parse_ack through a full Message.parse: every input, every error."""
    msg = Message.parse(data)
    if "MSA" not in msg.segment_names():
        raise HL7ParseError(f"ACK {msg.control_id!r} has no MSA segment")
    code = msg.get("MSA-1").strip().upper()
    if not code:
        raise HL7ParseError(f"ACK {msg.control_id!r} has an empty MSA-1")
    text = unescape(msg.get("MSA-3"), msg.separators, charset=msg.encoding)
    return code, msg.get("MSA-2"), text
