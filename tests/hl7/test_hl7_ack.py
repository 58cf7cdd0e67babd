"""ACKs: mirroring the sender, ERR on errors, PHI-free texts, best-effort AR, parse_ack."""

from __future__ import annotations

import re

import pytest

from conduit.core.errors import HL7ParseError
from conduit.hl7.ack import build_ack, build_ack_for_unparseable, new_control_id, parse_ack
from conduit.hl7.message import Message
from tests.samples import ACK_V21, ADT_A01, ADT_A08_LATIN1_BYTES, sample


def test_aa_mirrors_the_sender() -> None:
    msg = Message.parse(ADT_A01)
    ack = build_ack(msg, "AA")
    assert ack.segment_names() == ["MSH", "MSA"]
    assert ack.get("MSH-2") == "^~\\&"
    assert (ack.get("MSH-3"), ack.get("MSH-4")) == ("LABAPP", "LAB")
    assert (ack.get("MSH-5"), ack.get("MSH-6")) == ("REGADT", "GOOD HEALTH HOSPITAL")
    assert re.fullmatch(r"\d{14}", ack.get("MSH-7"))
    assert ack.get("MSH-9") == "ACK^A01^ACK"
    assert ack.control_id and ack.control_id != msg.control_id
    assert ack.get("MSH-11") == "P" and ack.version == "2.5.1"
    assert ack.get("MSH-18") == "UNICODE UTF-8"
    assert ack.get("MSA-1") == "AA" and ack.get("MSA-2") == "MSG00001"
    assert "MSA-3" not in ack
    assert ack.encode().endswith("\r")


def test_control_ids_are_unique_and_short() -> None:
    ids = {new_control_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 20 for i in ids)
    assert build_ack(Message.parse(ADT_A01), "CA", control_id="FIXED").control_id == "FIXED"


@pytest.mark.parametrize("code", ["AE", "AR", "CE", "CR"])
def test_errors_carry_err_segment_v25(code: str) -> None:
    ack = build_ack(Message.parse(ADT_A01), code, "store unavailable", error_code="207")
    assert ack.segment_names() == ["MSH", "MSA", "ERR"]
    assert ack.get("MSA-1") == code and ack.get("MSA-3") == "store unavailable"
    assert ack.get("ERR-3") == "207^store unavailable^HL70357"
    assert ack.get("ERR-4") == "E"


def test_err_segment_for_old_versions() -> None:
    old = Message.parse(sample("hapi-hl7v2/messages-14.hl7"))  # v2.2
    ack = build_ack(old, "AR", "bad & worse")
    assert ack.get("MSH-9") == "ACK^O01"  # no structure component before 2.3.1
    assert ack.get("ERR-1") == "^^^207&bad \\T\\ worse&HL70357"
    assert ack.get("ERR-1.4.1") == "207"


def test_no_trigger_gives_plain_ack() -> None:
    ack = build_ack(Message.parse(ACK_V21), "AA")
    assert ack.get("MSH-9") == "ACK"


def test_texts_are_escaped_one_line_and_short() -> None:
    ack = build_ack(Message.parse(ADT_A01), "AE", "bad|value^here~x&y\\z\r\nnext " + "x" * 200)
    msa = ack.segments("MSA")[0]
    assert len(msa.fields) == 4  # the text did not create fields
    assert ack.get("MSA-3").startswith("bad\\F\\value\\S\\here\\R\\x\\T\\y\\E\\z next")
    assert len(ack.get("MSA-3")) < 120 and ack.get("MSA-3").endswith("...")
    assert ack.segment_names() == ["MSH", "MSA", "ERR"]


def test_unknown_code_rejected() -> None:
    with pytest.raises(ValueError, match="ACK code"):
        build_ack(Message.parse(ADT_A01), "OK")


def test_charset_and_odd_separators_mirrored() -> None:
    msg = Message.parse(ADT_A08_LATIN1_BYTES)
    ack = build_ack(msg, "AE", "café closed")
    assert ack.encoding == "iso8859-1" and ack.get("MSH-18") == "8859/1"
    raw = ack.to_bytes()
    assert b"caf\xe9 closed" in raw
    assert Message.parse(raw).get("MSA-3") == "café closed"

    odd = Message.parse(sample("hapi-hl7v2/segmentfinder_a24.hl7"))
    ack = build_ack(odd, "AA")
    assert ack.encode().startswith("MSH^~|\\&^RECEIVING^200^SENDING^200M^")
    assert ack.get("MSH-9") == "ACK~A24~ACK"
    assert ack.get("MSA-2") == odd.control_id

    trunc = Message.parse(sample("hl7apy/rsp_k21_27.hl7"))
    ack = build_ack(trunc, "AE", "x#y")
    assert ack.get("MSH-2") == "^~\\&#" and ack.get("MSA-3") == "x\\P\\y"


def test_build_ack_for_unparseable_mirrors_what_it_can() -> None:
    raw = b"MSH|^|SEND|SFAC|RECV|RFAC|20240101||ADT^A01|CTRL9|P|2.3\rPID|1\r"  # MSH-2 too short
    with pytest.raises(HL7ParseError):
        Message.parse(raw)
    out = build_ack_for_unparseable(raw, "MSH-2 too short")
    assert out is not None
    ack = Message.parse(out)
    assert ack.get("MSH-2") == "^~\\&"  # a broken MSH-2 is replaced by the standard one
    assert (ack.get("MSH-3"), ack.get("MSH-5")) == ("RECV", "SEND")
    assert ack.get("MSH-9") == "ACK^A01" and ack.version == "2.3"
    assert parse_ack(out) == ("AR", "CTRL9", "MSH-2 too short")
    assert ack.get("ERR-1.4.1") == "207"


def test_build_ack_for_unparseable_generic() -> None:
    for raw in (b"this is not hl7", b"\x00\x01\x02", b"", b"MSHA|x"):
        out = build_ack_for_unparseable(raw, "not HL7: no MSH segment")
        assert out is not None
        code, control_id, text = parse_ack(out)
        assert (code, control_id, text) == ("AR", "", "not HL7: no MSH segment")
        assert Message.parse(out).get("ERR-3.1") == "207"


def test_build_ack_for_unparseable_keeps_charset() -> None:
    raw = ADT_A08_LATIN1_BYTES.replace(b"MSH|^~\\&|", b"MSH|^|")
    out = build_ack_for_unparseable(raw, "raison é")
    assert out is not None and b"raison \xe9" in out
    assert Message.parse(out).encoding == "iso8859-1"


def test_parse_ack() -> None:
    ack = build_ack(Message.parse(ADT_A01), "AE", "a|b")
    assert parse_ack(ack.to_bytes()) == ("AE", "MSG00001", "a|b")
    assert parse_ack(b"MSH|^~\\&|A\rMSA|aa|X1\r") == ("AA", "X1", "")
    with pytest.raises(HL7ParseError, match="no MSA"):
        parse_ack(ADT_A01.encode())
    with pytest.raises(HL7ParseError, match="empty MSA-1"):
        parse_ack(b"MSH|^~\\&|A\rMSA||X1\r")
    with pytest.raises(HL7ParseError):
        parse_ack(b"garbage")


def test_corpus_ack_message() -> None:
    assert parse_ack(sample("hapi-hl7v2/messages-03.hl7")) == ("AA", "msgCtrlId", "")
