"""HL7 v2 acknowledgements: build the ACK a sender expects, read the ACK a receiver sends.

The ACK mirrors the sender's header (apps/facilities swapped, same delimiters, version and
charset) because strict senders match on those. MSA-3 and ERR carry only the reason we were
given, escaped and shortened: never message content (PHI).
"""

from __future__ import annotations

import itertools
import os
import re
import time

from conduit.engine.errors import HL7ParseError
from conduit.hl7.codec import decode
from conduit.hl7.codec import encode as encode_text
from conduit.hl7.escape import escape, unescape
from conduit.hl7.message import Message, Separators, separators_for

__all__ = ["ACK_CODES", "build_ack", "build_ack_for_unparseable", "new_control_id", "parse_ack"]

ACK_CODES = frozenset({"AA", "AE", "AR", "CA", "CE", "CR"})
_ERROR_CODES = frozenset({"AE", "AR", "CE", "CR"})
_TEXT_MAX = 80  # MSA-3 is ST(80) in v2.3-v2.6
_DEFAULT_ERROR = "207"  # HL7 table 0357: application internal error
_STD = Separators()


_ID_PREFIX = os.urandom(6).hex().upper()  # 12 random hex characters per process
_ID_COUNTER = itertools.count(1)


def new_control_id() -> str:
    """A 20-character unique MSH-10 (fits every version's length limit).

    A random per-process prefix and a counter: unique like random ids, without a system call per
    ACK (os.urandom cost ~34 µs an ACK under load).
    """
    return f"{_ID_PREFIX}{next(_ID_COUNTER) % 16**8:08X}"


def _now() -> str:
    return time.strftime("%Y%m%d%H%M%S")


def _version_tuple(version: str) -> tuple[int, ...]:
    nums = re.findall(r"\d+", version)
    return tuple(int(n) for n in nums) if nums else (9,)


def _clean(text: str) -> str:
    """One line, at most _TEXT_MAX characters (before escaping, so escapes are never cut)."""
    text = " ".join(text.split())
    return text if len(text) <= _TEXT_MAX else text[: _TEXT_MAX - 3] + "..."


def _assemble(
    seps: Separators,
    msh2: str,
    header: dict[int, str],
    code: str,
    acked_id: str,
    text: str | None,
    error_code: str | None,
    version: str,
) -> str:
    """Build ACK text from MSH field values (raw), MSA and ERR content (plain)."""
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
        if _version_tuple(version) >= (2, 5):
            cwe = cs.join([escape(err_code, seps), err_text, "HL70357"])
            segments.append(fs.join(["ERR", "", "", cwe, "E"]))
        else:
            # v2.1-2.4: ERR-1 is ELD: segment^sequence^field^code(CE, as subcomponents)
            ce = ss.join([escape(err_code, seps), err_text, "HL70357"])
            segments.append(fs.join(["ERR", cs * 3 + ce]))
    return "\r".join(segments) + "\r"


def _msh9(seps: Separators, trigger: str, version: str) -> str:
    if not trigger:
        return "ACK"
    cs = seps.component
    if _version_tuple(version) >= (2, 3, 1):
        return f"ACK{cs}{trigger}{cs}ACK"
    return f"ACK{cs}{trigger}"


def build_ack(
    msg: Message,
    code: str,
    text: str | None = None,
    *,
    error_code: str | None = None,
    control_id: str | None = None,
) -> Message:
    """The ACK for ``msg`` with MSA-1 ``code``; AE/AR/CE/CR also get an ERR segment.

    ``text`` is a short reason (no message content); ``error_code`` is from HL7 table 0357
    (default 207, application internal error); ``control_id`` overrides the generated MSH-10.
    """
    if code not in ACK_CODES:
        raise ValueError(f"ACK code must be one of {sorted(ACK_CODES)}, got {code!r}")
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
    text_out = _assemble(seps, msg.get("MSH-2"), header, code, msg.control_id, text,
                         error_code, msg.version)
    return Message._from_text(text_out, msg.encoding)


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


def build_ack_for_unparseable(raw: bytes, reason: str) -> bytes | None:
    """Best-effort AR for bytes that are not a message we can parse.

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
        out = _assemble(_STD, _STD.encoding_chars, header, "AR", "", reason, None, "2.5")
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
    out = _assemble(seps, msh2, header, "AR", _component(at(10), seps, 1), reason, None,
                    _component(version, seps, 1))
    return encode_text(out, codec)


def _component(value: str, seps: Separators, n: int) -> str:
    parts = value.split(seps.repetition, 1)[0].split(seps.component)
    return parts[n - 1] if n <= len(parts) else ""


def parse_ack(data: bytes) -> tuple[str, str, str]:
    """(MSA-1 code, MSA-2 control id, MSA-3 text unescaped) of an ACK; HL7ParseError if none."""
    msg = Message.parse(data)
    if "MSA" not in msg.segment_names():
        raise HL7ParseError(f"ACK {msg.control_id!r} has no MSA segment")
    code = msg.get("MSA-1").strip().upper()
    if not code:
        raise HL7ParseError(f"ACK {msg.control_id!r} has an empty MSA-1")
    text = unescape(msg.get("MSA-3"), msg.separators, charset=msg.encoding)
    return code, msg.get("MSA-2"), text
