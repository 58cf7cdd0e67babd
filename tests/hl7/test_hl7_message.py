"""Message: parsing rules, field access, set/delete with padding, round trip."""

from __future__ import annotations

import pytest

from conduit.core.errors import HL7ParseError
from conduit.hl7.message import Message, Separators
from tests.samples import ADT_A01, ADT_A01_WITH_Z, ORU_R01, sample


def test_reads_fields_by_path() -> None:
    m = Message.parse(ADT_A01)
    assert m["MSH-9"] == "ADT^A01^ADT_A01"
    assert m.get("MSH-9.1") == "ADT"
    assert m.get("MSH-10") == m.control_id == "MSG00001"
    assert m.message_type == "ADT^A01"
    assert m.message_structure == "ADT_A01"
    assert m.version == "2.5.1"
    assert m.sending_app == "REGADT" and m.receiving_facility == "LAB"
    assert m.processing_id == "P"
    assert m.get("PID-3") == "PATID1234^^^GOOD HEALTH HOSPITAL^MR"  # first repetition
    assert m.get("PID-3[2].1") == "SSN000000"
    assert m.get("PID-3[2].4") == "USSSA"
    assert m.get("PID-5.1") == "TESTPATIENT"
    assert m.get("PID-11.3") == "SPRINGFIELD"
    assert m.repetitions("PID-3") == ["PATID1234^^^GOOD HEALTH HOSPITAL^MR", "SSN000000^^^USSSA^SS"]
    assert m.repetitions("PID-99") == [] and m.repetitions("ZZZ-1") == []


def test_msh_numbering_counts_the_field_separator() -> None:
    m = Message.parse(ADT_A01)
    assert m.get("MSH-1") == "|"
    assert m.get("MSH-2") == "^~\\&"
    assert m.get("MSH-3") == "REGADT"
    msh = m.segments("MSH")[0]
    assert msh.fields[:4] == ["MSH", "|", "^~\\&", "REGADT"]
    assert msh.get("9.2") == "A01" and msh.get("MSH-9.2") == "A01"


def test_absent_and_default() -> None:
    m = Message.parse(ORU_R01)
    assert m.get("PID-99") == ""
    assert m.get("PID-5.9") == ""
    assert m.get("PID-3[5]") == ""
    assert m.get("ZZZ-1", "none") == "none"
    assert m.get("OBX[9]-5") == ""
    assert "OBX[2]-5" in m and "OBX[4]-5" not in m and "PID-99" not in m
    assert m.get("PID").startswith("PID|1||")  # a segment path gives the raw segment


def test_segment_index_and_subcomponents() -> None:
    m = Message.parse(ORU_R01)
    assert m.get("OBX[2]-5") == "Fasting \\T\\ rested"
    assert m.get("OBX[3]-3.2") == "Potassium"
    assert [s.get("1") for s in m.segments("OBX")] == ["1", "2", "3"]
    assert m.segment_names() == ["MSH", "PID", "OBR", "OBX", "OBX", "OBX", "NTE"]
    m2 = Message.parse("MSH|^~\\&|A|B\rPID|1||1^^^H&1.2.3&ISO\r")
    assert m2.get("PID-3.4.2") == "1.2.3"
    assert m2.get("PID-3.4.4") == ""


def test_invalid_path_raises_value_error() -> None:
    m = Message.parse(ADT_A01)
    with pytest.raises(ValueError, match="invalid HL7 path"):
        m.get("pid-3")
    with pytest.raises(ValueError, match="start at 1"):
        m.get("PID-0")


@pytest.mark.parametrize("ending", ["\r", "\n", "\r\n", "\n\n", "\r\n\r\n"])
def test_segment_separators_and_blank_lines(ending: str) -> None:
    text = ADT_A01.replace("\r", ending)
    m = Message.parse("\ufeff  \r\n" + text + "\n\n")
    assert m.encode() == ADT_A01


def test_bom_and_leading_whitespace_in_bytes() -> None:
    m = Message.parse(b"\xef\xbb\xbf\r\n  " + ADT_A01.encode())
    assert m.encode() == ADT_A01


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"   \r\n", "empty"),
        (b"PID|1\rMSH|^~\\&|A\r", "does not start with an MSH"),
        (b"garbage MSH|^~\\&|A\r", "does not start with an MSH"),
        (b"MSH", "truncated"),
        (b"MSHA^~\\&|x\r", "field separator"),
        (b"MSH ^~\\&|x\r", "field separator"),
        (b"MSH\r", "no field separator"),
        (b"MSH|^|A\r", "too short"),
        (b"MSH||A\r", "too short"),
        (b"MSH|^~\\&&&|A\r", "too long"),
        (b"MSH|^^\\&|A\r", "same separator twice"),
        (b"MSH|^A\\&|A\r", "contains 'A'"),
        (b"MSH|^~\\&|A\x00\x01\x02\r", "not text"),
        (b"\x00\x01\x02\x03binary", "not text"),
    ],
)
def test_unparseable_input_says_why(data: bytes, reason: str) -> None:
    with pytest.raises(HL7ParseError, match=reason):
        Message.parse(data)


def test_rejects_non_text_types() -> None:
    with pytest.raises(HL7ParseError, match="expected bytes or str"):
        Message.parse(123)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("msh2", "expected"),
    [
        ("^~\\&", Separators()),
        ("^~\\&#", Separators(truncation="#")),
        ("^~\\}", Separators(subcomponent="}")),
        ("^~}", Separators(escape="}")),  # python-hl7 reads it the same way
        ("^~\\\\&", Separators()),  # doubled escape counted once
        ("^~", Separators()),
    ],
)
def test_odd_encoding_characters(msh2: str, expected: Separators) -> None:
    m = Message.parse(f"MSH|{msh2}|APP|FAC\rPID|1\r")
    assert m.separators == expected
    assert m.get("MSH-2") == msh2
    assert m.get("MSH-3") == "APP"


def test_non_standard_field_separator() -> None:
    m = Message.parse(sample("hapi-hl7v2/segmentfinder_a24.hl7"))
    assert m.separators == Separators(field="^", component="~", repetition="|")
    assert m.message_type == "ADT^A24"  # always joined with '^'
    assert m.get("MSH-1") == "^"
    assert m.get("PID[2]-3.1") == "22222"
    assert m.get("PID-5.2") == "JOHN"


def test_empty_trigger_gives_bare_message_code() -> None:
    m = Message.parse(sample("hapi-hl7v2/messages-03.hl7"))
    assert m.get("MSH-9") == "ACK^"
    assert m.message_type == "ACK"


def test_set_pads_fields_repetitions_components() -> None:
    m = Message.parse(ADT_A01)
    m.set("PID-5.1", "OTHERNAME")
    assert m.get("PID-5") == "OTHERNAME^ALPHA^Q^^^^L"
    m.set("PV1-3.2", "202")
    assert m.get("PV1-3") == "WARD1^202^A^GOOD HEALTH HOSPITAL"
    m.set("EVN-6", "X")
    assert m.segments("EVN")[0].raw == "EVN|A01|20240102030405||||X"
    m.set("NK1-3[3].2", "Y")
    assert m.segments("NK1")[0].fields[3] == "SPO^Spouse^HL70063~~^Y"
    m.set("NK1-2.1.3", "Z")
    assert m.get("NK1-2.1") == "TESTPATIENT&&Z"
    m.set("MSH-10", "NEWID")
    assert m.control_id == "NEWID"
    assert m.encode().startswith("MSH|^~\\&|REGADT|GOOD HEALTH HOSPITAL|LABAPP|LAB|20240102030405||"
                                 "ADT^A01^ADT_A01|NEWID|")


def test_set_whole_field_replaces_first_repetition_only() -> None:
    m = Message.parse(ADT_A01)
    m.set("PID-3", "NEW^^^H^MR")
    assert m.repetitions("PID-3") == ["NEW^^^H^MR", "SSN000000^^^USSSA^SS"]


def test_set_leaves_other_segments_byte_identical() -> None:
    m = Message.parse(ADT_A01)
    m.get("PV1-3")  # reading splits and caches, and must not change output
    m.set("PID-8", "F")
    before, after = ADT_A01.split("\r"), m.encode().split("\r")
    assert [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b] == [2]


def test_set_needs_an_existing_segment_and_a_field() -> None:
    m = Message.parse(ADT_A01)
    with pytest.raises(KeyError, match="ZPI"):
        m.set("ZPI-1", "x")
    with pytest.raises(KeyError, match="OBX"):
        m.set("OBX-1", "x")
    with pytest.raises(ValueError, match="needs a field"):
        m.set("PID", "x")
    with pytest.raises(ValueError, match="separators"):
        m.set("MSH-2", "^~")


def test_delete_segments_and_fields() -> None:
    m = Message.parse(ADT_A01_WITH_Z)
    m.delete("ZPI[2]")
    assert m.segment_names()[-1] == "ZPI" and m.get("ZPI-2") == "first"
    m.delete("ZPI")
    assert "ZPI" not in m.segment_names()
    assert m.encode() == ADT_A01
    m.delete("ZPI")  # absent: nothing to do
    m.delete("PID-5.2")
    assert m.get("PID-5") == "TESTPATIENT^^Q^^^^L"
    m.delete("PID-3[2]")
    assert m.get("PID-3[2]") == "" and m.get("PID-3[1].1") == "PATID1234"
    m.delete("PID-40")  # absent field: no padding
    assert len(m.segments("PID")[0].fields) == 12
    with pytest.raises(ValueError, match="MSH"):
        m.delete("MSH")


def test_index_stays_right_after_delete() -> None:
    m = Message.parse(ADT_A01_WITH_Z)
    m.delete("NK1")
    assert m.get("PV1-2") == "I"
    assert m.get("ZPI[2]-2") == "second"
    m.set("ZPI[2]-2", "changed")
    assert m.encode().endswith("ZPI|1|first\rZPI|2|changed\r")


def test_to_bytes_uses_declared_charset() -> None:
    m = Message.parse(ADT_A01.replace("UNICODE UTF-8", "8859/1"))
    assert m.encoding == "iso8859-1"
    m.set("PID-5.2", "RENÉE")
    assert b"REN\xc9E" in m.to_bytes()
    assert Message.parse(ADT_A01).encoding == "utf-8"


def test_repr_and_len_carry_no_content() -> None:
    m = Message.parse(ADT_A01)
    assert len(m) == 5
    assert "TESTPATIENT" not in repr(m)
    assert "TESTPATIENT" not in repr(m.segments("PID")[0])
