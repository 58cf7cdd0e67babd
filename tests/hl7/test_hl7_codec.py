"""Charset handling: MSH-18 drives decoding, and bytes never make decoding fail."""

from __future__ import annotations

import pytest

from conduit.hl7.codec import charset_to_codec, decode, encode
from conduit.hl7.message import Message
from tests.samples import ADT_A08_LATIN1, ADT_A08_LATIN1_BYTES, sample


def test_8859_1_message_with_a_non_ascii_byte() -> None:
    assert b"\xc9" in ADT_A08_LATIN1_BYTES
    text, codec = decode(ADT_A08_LATIN1_BYTES)
    assert codec == "iso8859-1" and text == ADT_A08_LATIN1
    m = Message.parse(ADT_A08_LATIN1_BYTES)
    assert m.encoding == "iso8859-1"
    assert m.get("PID-5.2") == "RENÉE"
    assert m.to_bytes() == ADT_A08_LATIN1_BYTES


def test_corpus_8859_1_message() -> None:
    m = Message.parse(sample("hapi-hl7v2/cv.04_001_chem.hl7"))
    assert m.charset == "8859/1" and m.encoding == "iso8859-1"


@pytest.mark.parametrize(
    ("charset", "codec"),
    [("ASCII", "ascii"), ("8859/1", "iso8859-1"), ("8859/9", "iso8859-9"),
     ("UNICODE UTF-8", "utf-8"), ("UTF-8", "utf-8"), ("unicode utf-8", "utf-8"),
     ("UNICODE", "utf-8"), ("KLINGON", None)],
)
def test_table_0211(charset: str, codec: str | None) -> None:
    assert charset_to_codec(charset) == codec


def test_absent_charset_tries_utf8_then_latin1() -> None:
    utf8 = "MSH|^~\\&|A\rPID|1||||MÜLLER\r".encode()
    assert decode(utf8) == (utf8.decode(), "utf-8")
    latin = "MSH|^~\\&|A\rPID|1||||MÜLLER\r".encode("latin-1")
    assert decode(latin) == (latin.decode("latin-1"), "latin-1")


def test_wrong_declared_charset_does_not_fail() -> None:
    raw = "MSH|^~\\&|A|||||ADT^A01|1|P|2.5|||||||ASCII\rPID|1||||MÜLLER\r".encode()
    text, codec = decode(raw)
    assert codec == "utf-8" and "MÜLLER" in text
    raw = b"MSH|^~\\&|A|||||ADT^A01|1|P|2.5|||||||UNICODE UTF-8\rPID|1||||M\xdcLLER\r"
    text, codec = decode(raw)
    assert codec == "latin-1" and "MÜLLER" in text


def test_charset_with_repetition_and_bom() -> None:
    raw = b"\xef\xbb\xbfMSH|^~\\&|A|||||ADT^A01|1|P|2.5|||||||8859/1~UNICODE UTF-8\rPID|\xe9\r"
    text, codec = decode(raw)
    assert codec == "iso8859-1" and text.startswith("MSH") and text.endswith("PID|é\r")


def test_utf16_recognised() -> None:
    text = "MSH|^~\\&|A|||||ADT^A01|1|P|2.5\rPID|1||||Ωmega\r"
    for raw in (text.encode("utf-16"), text.encode("utf-16-le"), text.encode("utf-16-be")):
        assert decode(raw) == (text, "utf-16")


def test_encode_keeps_unencodable_characters_as_hex_escapes() -> None:
    assert encode("é", "iso8859-1") == b"\xe9"
    assert encode("a€b", "iso8859-1") == b"a\\XE282AC\\b"


def test_wide_charset_declared_on_8bit_bytes_is_not_trusted() -> None:
    raw = b"MSH|^~\\&|A|||||ADT^A01|1|P|2.5|||||||UNICODE UTF-16\rPID|1||||M\xc3\x9cLLER\r"
    text, codec = decode(raw)
    assert codec == "utf-8" and "MÜLLER" in text
    m = Message.parse(raw.replace(b"M\xc3\x9cLLER", b"MULLER"))  # ASCII: lazy path
    assert m.encoding == "utf-8" and m.charset == "UNICODE UTF-16"


def test_ascii_bytes_take_the_declared_codec_lazily() -> None:
    m = Message.parse(b"MSH|^~\\&|A|||||ADT^A01|1|P|2.5|||||||8859/2\rPID|1\r")
    assert m.encoding == "iso8859-2"
    m.encoding = "utf-8"
    assert m.encoding == "utf-8"
