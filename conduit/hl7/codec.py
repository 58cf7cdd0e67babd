"""Bytes <-> text for HL7 v2, driven by MSH-18 (HL7 table 0211).

Receivers must never fail on bytes: senders routinely declare ASCII and send Latin-1, or send
nothing at all. So an unknown or wrong charset falls back to UTF-8 and then Latin-1 (which decodes
anything); the codec actually used is returned so replies go out in the same one.
"""

from __future__ import annotations

import codecs

__all__ = ["charset_to_codec", "decode", "encode"]

# HL7 table 0211 (v2.3-v2.8) -> Python codec name.
_TABLE_0211 = {
    "ASCII": "ascii",
    "8859/1": "iso8859-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    # "UNICODE" (UCS-2) on a byte stream whose MSH we could read byte-wise is not UCS-2 in
    # practice; real UTF-16 is recognised from its BOM / NUL pattern in decode().
    "UNICODE": "utf-8",
    "UNICODE UTF-16": "utf-16",
    "UNICODE UTF-32": "utf-32",
    "GB 18030-2000": "gb18030",
    "KS X 1001": "euc_kr",
    "BIG-5": "big5",
    "CNS 11643-1992": "big5",
    "ISO IR87": "iso2022_jp",
    "ISO IR159": "iso2022_jp_2",
    "ISO IR14": "shift_jis",
}

_BOM8 = codecs.BOM_UTF8
_WIDE = frozenset({"utf-16", "utf-32"})
_WIDE_STARTS = frozenset({codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, b"M\x00", b"\x00M"})


def charset_to_codec(charset: str) -> str | None:
    """Python codec for an MSH-18 value (first repetition/component), None if unknown."""
    return _TABLE_0211.get(charset.strip().upper())


def byte_codec(charset: str) -> str | None:
    """Like charset_to_codec, but None for UTF-16/32: a declaration we could read byte-wise
    came in an 8-bit encoding whatever it says, and decoding it as UTF-16 would make garbage."""
    codec = _TABLE_0211.get(charset.strip().upper())
    return None if codec in _WIDE else codec


def may_be_wide(raw: bytes) -> bool:
    """True if ``raw`` could be UTF-16 (BOM or the NUL pattern of 'MSH'); cheap."""
    return raw[:2] in _WIDE_STARTS


def _msh18(first_line: bytes) -> str:
    """MSH-18 of a raw MSH line, or "" (MSH-18 = split[17]; MSH-1 is the separator itself)."""
    if not first_line.startswith(b"MSH") or len(first_line) < 4:
        return ""
    fs = first_line[3:4]
    if first_line.count(fs) < 17:
        return ""
    parts = first_line.split(fs, 18)
    if len(parts) < 18:
        return ""
    value = parts[17]
    if len(parts[1]) >= 2:  # first repetition, first component
        value = value.split(parts[1][1:2], 1)[0].split(parts[1][0:1], 1)[0]
    return value.decode("latin-1")


def _utf16(raw: bytes) -> str | None:
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if raw.startswith(b"M\x00S\x00H\x00"):
        return "utf-16-le"
    if raw.startswith(b"\x00M\x00S\x00H"):
        return "utf-16-be"
    return None


def decode(raw: bytes) -> tuple[str, str]:
    """Decode a raw message; return (text, python codec name used). Never raises on bytes."""
    wide = _utf16(raw)
    if wide is not None:
        try:
            text = raw.decode(wide)
        except UnicodeDecodeError:
            pass
        else:
            return text.removeprefix("\ufeff"), "utf-16"
    if raw.startswith(_BOM8):
        raw = raw[3:]
    start = raw.find(b"MSH", 0, 64)
    codec = None
    if start != -1:
        end = raw.find(b"\r", start, start + 1024)
        if end == -1:
            end = start + 1024
        charset = _msh18(raw[start:end].split(b"\n", 1)[0])
        if charset:
            codec = byte_codec(charset)
    if codec is None and raw.isascii():
        return raw.decode("ascii"), "utf-8"
    for name in (codec, "utf-8"):
        if name is None:
            continue
        try:
            return raw.decode(name), name
        except (UnicodeDecodeError, LookupError):
            continue
    return raw.decode("latin-1"), "latin-1"


def encode(text: str, codec: str) -> bytes:
    """Encode text in ``codec``; characters the codec cannot hold become numeric HL7 escapes.

    Replacing with ``?`` would silently change data; ``\\Xhh\\`` keeps it recoverable (the
    bytes are the UTF-8 of the character, which is what a v2.8 receiver expects).
    """
    try:
        return text.encode(codec)
    except UnicodeEncodeError:
        return text.encode(codec, errors="hl7-hex")


def _hl7_hex(err: UnicodeError) -> tuple[str, int]:
    assert isinstance(err, UnicodeEncodeError)
    bad = err.object[err.start : err.end]
    return "\\X" + bad.encode("utf-8").hex().upper() + "\\", err.end


codecs.register_error("hl7-hex", _hl7_hex)
