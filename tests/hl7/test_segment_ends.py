"""Segment ends are decided per message (issue 14, item 3).

A message whose segments end in CR (the standard) may carry a bare LF inside a field (a
multi-line OBX-5 some senders write unescaped): that LF is data, as python-hl7 and hl7apy read it,
not the start of a new segment. Messages written with LF or CRLF line ends keep working.
"""

from __future__ import annotations

import hl7

from conduit.connectors.hl7batch import split_batch
from conduit.hl7.batch import split_messages
from conduit.hl7.message import Message

CR_WITH_LF_IN_OBX5 = (
    "MSH|^~\\&|LAB|HOSP|EHR|HOSP|20260102080000||ORU^R01^ORU_R01|LF1|P|2.5.1\r"
    "PID|1||MRN1^^^HOSP^MR||DOE^JANE\r"
    "OBR|1||F1|11502-2^Report^LN\r"
    "OBX|1|TX|11502-2^Report^LN||line one\nline two\nOBX looks like a segment||||||F\r")


def test_bare_lf_in_a_cr_message_stays_in_the_field() -> None:
    msg = Message.parse(CR_WITH_LF_IN_OBX5)
    assert msg.segment_names() == ["MSH", "PID", "OBR", "OBX"]
    assert msg["OBX-5"] == "line one\nline two\nOBX looks like a segment"
    assert msg["OBX-11"] == "F"
    assert msg.encode() == CR_WITH_LF_IN_OBX5


def test_bare_lf_in_a_cr_message_agrees_with_python_hl7() -> None:
    theirs = hl7.parse(CR_WITH_LF_IN_OBX5)
    ours = Message.parse(CR_WITH_LF_IN_OBX5)
    assert [str(s[0]) for s in theirs] == ours.segment_names()
    assert str(theirs.segment("OBX")[5]) == ours["OBX-5"]


def test_bytes_parse_like_text() -> None:
    msg = Message.parse(CR_WITH_LF_IN_OBX5.encode())
    assert msg.to_bytes() == CR_WITH_LF_IN_OBX5.encode()


def test_lf_and_crlf_messages_still_split_on_their_line_ends() -> None:
    for end in ("\n", "\r\n"):
        text = CR_WITH_LF_IN_OBX5.replace("\n", " ").replace("\r", end)
        msg = Message.parse(text)
        assert msg.segment_names() == ["MSH", "PID", "OBR", "OBX"]
        assert msg["OBX-11"] == "F"


def test_crlf_remnant_before_a_segment_is_not_part_of_its_name() -> None:
    text = CR_WITH_LF_IN_OBX5.replace("\rOBR", "\r\nOBR")
    msg = Message.parse(text)
    assert msg.segment_names() == ["MSH", "PID", "OBR", "OBX"]
    assert msg["OBX-5"] == "line one\nline two\nOBX looks like a segment"


def test_batch_split_keeps_a_bare_lf_in_a_cr_file() -> None:
    batch = ("BHS|^~\\&|LAB|HOSP\r" + CR_WITH_LF_IN_OBX5
             + CR_WITH_LF_IN_OBX5.replace("|LF1|", "|LF2|") + "BTS|2\r")
    messages = split_messages(batch)
    assert messages == [CR_WITH_LF_IN_OBX5, CR_WITH_LF_IN_OBX5.replace("|LF1|", "|LF2|")]


def test_a_batch_on_the_wire_keeps_a_bare_lf_in_a_cr_message() -> None:
    """The envelope check counts messages by their MSH: a line of OBX-5 text starting with
    'MSH:' after a bare LF is not one (it made the BTS count look wrong and the batch refused)."""
    message = CR_WITH_LF_IN_OBX5.replace("line two", "MSH: mean sleep hours 6")
    payload = f"BHS|^~\\&|LAB|HOSP\r{message}BTS|1\r".encode()
    batch = split_batch(payload)
    assert batch is not None
    assert batch.messages == [message.encode()]
    assert batch.batch_header == "BHS|^~\\&|LAB|HOSP"
