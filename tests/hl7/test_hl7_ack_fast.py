"""The ACK fast paths give exactly what the general code gives: whole corpus, odd input.

``build_ack``'s plain AA/CA path (one split of the MSH) against the field-by-field path that
builds every other ACK (the pre-issue-7 implementation, kept as it was); ``build_ack_bytes``
against ``build_ack(...).to_bytes()``; ``parse_ack``'s scan and ``message_control_id`` against a
full ``Message.parse``, errors included.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conduit.core.errors import HL7ParseError
from conduit.hl7 import ack
from conduit.hl7.ack import build_ack, build_ack_bytes, message_control_id, parse_ack
from conduit.hl7.batch import split_messages
from conduit.hl7.codec import decode
from conduit.hl7.message import Message
from tests.samples import ACK_V21, ADT_A01, ADT_A08_LATIN1_BYTES, corpus_files, corpus_id

FILES = corpus_files()
STAMP = "20260102030405"


@pytest.fixture(autouse=True)
def _fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ack, "_now", lambda: STAMP)


def corpus_messages(path: Path) -> Iterator[Message]:
    """The file parsed whole from its bytes (charset, line ends as found), and each message of
    it parsed from text, for every form that parses."""
    raw = path.read_bytes()
    try:
        whole: Message | None = Message.parse(raw)
    except HL7ParseError:
        whole = None
    if whole is not None:
        yield whole
    try:
        texts = split_messages(decode(raw)[0])
    except HL7ParseError:
        return
    for text in texts:
        yield Message.parse(text)


def outcome(call: Callable[[bytes], Any], data: bytes) -> Any:
    try:
        return ("ok", call(data))
    except HL7ParseError as exc:
        return ("error", type(exc), str(exc))


@pytest.mark.parametrize("path", FILES, ids=corpus_id)
def test_plain_ack_is_the_general_ack_on_the_corpus(path: Path) -> None:
    for msg in corpus_messages(path):
        for code in ("AA", "CA"):
            plain = ack._segments_plain(msg, code, "CTRL")
            assert plain == ack._segments_general(msg, code, None, None, "CTRL")
            assert build_ack_bytes(msg, code, control_id="CTRL") == \
                build_ack(msg, code, control_id="CTRL").to_bytes()
        for code, text in (("AE", "store unavailable"), ("AR", "bad | value é"),
                           ("AA", "accepted & noted")):
            assert build_ack_bytes(msg, code, text, error_code="207", control_id="X") == \
                build_ack(msg, code, text, error_code="207", control_id="X").to_bytes()
        built = build_ack_bytes(msg, "AA")
        assert parse_ack(built) == ("AA", msg.control_id, "")
        assert re.fullmatch(r"[0-9A-F]{20}", Message.parse(built).control_id)


def test_plain_ack_field_by_field() -> None:
    msg = Message.parse(ADT_A01)
    assert build_ack_bytes(msg, "AA", control_id="C1") == (
        b"MSH|^~\\&|LABAPP|LAB|REGADT|GOOD HEALTH HOSPITAL|20260102030405||ACK^A01^ACK|C1|P|"
        b"2.5.1||||||UNICODE UTF-8\rMSA|AA|MSG00001\r")
    assert build_ack_bytes(Message.parse(ACK_V21), "CA", control_id="C2") == (
        b"MSH|^~\\&|ADTAPP|ADT|RADAPP|RAD|20260102030405||ACK|C2|P|2.1\rMSA|CA|CTRL21\r")
    latin = Message.parse(ADT_A08_LATIN1_BYTES)
    assert build_ack_bytes(latin, "AE", "café", control_id="C3").endswith(
        b"MSA|AE|MSG00003|caf\xe9\rERR|^^^207&caf\xe9&HL70357\r")


def test_plain_ack_reads_first_repetitions_and_short_headers() -> None:
    repeated = Message.parse(
        "MSH|^~\\&|APP~APP2|FAC|RECV~R2|RF~RF2|20240101||ADT^A04~ORU^R01|ID1~ID2|P~T|"
        "2.4~2.5||||||8859/1~UNICODE UTF-8\rPID|1\r")
    short = Message.parse("MSH|^~\\&|APP\r")
    for msg in (repeated, short):
        assert ack._segments_plain(msg, "AA", "C") == \
            ack._segments_general(msg, "AA", None, None, "C")
    assert ack._segments_plain(repeated, "AA", "C") == [
        "MSH|^~\\&|RECV|RF|APP|FAC|20260102030405||ACK^A04^ACK|C|P|2.4||||||8859/1",
        "MSA|AA|ID1"]


def test_changed_message_goes_through_the_parser() -> None:
    # set() can put anything in the MSH; the bytes are then those of build_ack(), whatever it does
    msg = Message.parse(ADT_A01)
    msg.set("MSH-3", "A\nB")
    assert build_ack_bytes(msg, "AA", control_id="C") == \
        build_ack(msg, "AA", control_id="C").to_bytes()
    msg.set("MSH-3", "A\x01B")
    with pytest.raises(HL7ParseError, match="control characters"):
        build_ack(msg, "AA")
    with pytest.raises(HL7ParseError, match="control characters"):
        build_ack_bytes(msg, "AA")
    with pytest.raises(ValueError, match="ACK code"):
        build_ack_bytes(msg, "OK")


def odd_acks() -> list[bytes]:
    good = b"MSH|^~\\&|R|RF|S|SF|20260101||ACK|A1|P|2.5\rMSA|AA|C1\r"
    return [
        good,
        good.rstrip(b"\r"),
        good.replace(b"\r", b"\r\n"),
        good.replace(b"\r", b"\n"),
        b"\xef\xbb\xbf" + good,
        b"  " + good,
        good + b"ERR|||207\r",
        b"MSH|^~\\&|R\rMSA|aa|X1\r",
        b"MSH|^~\\&|R\rMSA| ce ~AA|X1~X2|why~not|more\r",
        b"MSH|^~\\&|R\rMSA\r",
        b"MSH|^~\\&|R\rMSA",
        b"MSH|^~\\&|R\rMSA||X1\r",
        b"MSH|^~\\&|R\rMSA|   |X1\r",
        b"MSH|^~\\&|R\rMSAX|AA|X1\rMSA|AE|X2\r",
        b"MSH|^~\\&|R\rMSA |AA|X1\r",
        b"MSH|^~\\&|R\rmsa|AA|X1\r",
        b"MSH|^~\\&|R\r\r \rMSA|AR|X1|a\\F\\b\\X4142\\\\.br\\c\\Z1\\\r",
        b"MSH|^~\\&|R|||||||||||||||8859/1\rMSA|AE|X1|caf\\XE9\\\r",
        b"MSH|^~\\&|R|||||||||||||||UNICODE UTF-8\rMSA|AE|X1|caf\\XC3A9\\\r",
        b"MSH|^~\\&|R|||||||||||||||8859/1\rMSA|AE|X1|caf\xe9\r",
        b"MSH|^~\\&|R\rMSA|AE|X1|caf\xc3\xa9\r",
        b"MSH|^~\\&|R\rMSA|AA|X1\x00\r",
        b"MSH|^~\\&|R\x01\rMSA|AA|X1\r",
        b"MSH|^~\\&|R\rMSA|AA|X1\x01\r",
        b"MSH|^~\\&|R\t\rMSA|AA|X1\r",
        b"MSH|^|R\rMSA|AA|X1\r",
        b"MSH|^~\\&&|R\rMSA|AA|X1\r",
        b"MSH|^~\\\\&|R\rMSA|AA|X1|a\\T\\b\r",
        b"MSH|^~\\&#|R\rMSA|AA|X1|a\\P\\b\r",
        b"MSH^~|\\&^R^^^^^^ACK~A01^C^P^2.5\rMSA^AA^X1~X2^a|b\r",
        b"MSHa^~\\&|R\rMSA|AA|X1\r",
        b"MSH\rMSA|AA|X1\r",
        b"MSH|",
        b"MSH",
        b"PID|1\rMSA|AA|X1\r",
        b"",
        b"garbage",
        b"M\x00S\x00H\x00|\x00",
        "MSH|^~\\&|R\rMSA|AA|X1\r".encode("utf-16"),
        b"MSH|^~\\&|R|||||||ID9|P|2.5\rPID|1\r",
    ]


def every_input() -> Iterator[bytes]:
    yield from odd_acks()
    for path in FILES:
        yield path.read_bytes()
        for msg in corpus_messages(path):
            yield msg.to_bytes()
            yield build_ack(msg, "AA", control_id="C").to_bytes()
            yield build_ack(msg, "AE", "a|b^c~d\\e&f é", control_id="C").to_bytes()


def test_parse_ack_scan_is_the_full_parse() -> None:
    seen = 0
    for data in every_input():
        assert outcome(parse_ack, data) == outcome(ack._parse_ack_message, data), data[:200]
        seen += 1
    assert seen > 1000
    assert parse_ack("MSH|^~\\&|R\rMSA|AA|X1\r") == ("AA", "X1", "")  # type: ignore[arg-type]


def test_message_control_id_is_the_full_parse() -> None:
    for data in every_input():
        try:
            expected: str | None = Message.parse(data).control_id
        except HL7ParseError:
            expected = None
        assert message_control_id(data) == expected, data[:200]
    assert message_control_id(b"MSH|^~\\&|A|B|C|D|2026||ADT^A01|ID1~ID2|P|2.5\rPID|1\r") == "ID1"
    assert message_control_id(b"MSH|^~\\&|A|B|C|D|2026||ADT^A01\r") == ""
    assert message_control_id(b"not hl7") is None


def test_clock_is_strftime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real _now
    for _ in range(3):
        # time.time() is the clock _now reads; a bare strftime() may read the kernel's coarse
        # clock, a few ms behind at a second's turn
        before = time.strftime("%Y%m%d%H%M%S", time.localtime(time.time()))
        now = ack._now()
        after = time.strftime("%Y%m%d%H%M%S", time.localtime(time.time()))
        assert now in (before, after)
        time.sleep(0.4)
