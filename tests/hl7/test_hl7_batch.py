"""Batch files and multi-message streams."""

from __future__ import annotations

import pytest

from conduit.core.errors import HL7ParseError
from conduit.hl7.batch import is_batch, split_messages
from conduit.hl7.message import Message
from tests.samples import ADT_A01, ORU_R01, sample


def test_single_message() -> None:
    assert split_messages(ADT_A01) == [ADT_A01]
    assert not is_batch(ADT_A01)


@pytest.mark.parametrize("ending", ["\r", "\n", "\r\n"])
def test_messages_with_blank_lines_between(ending: str) -> None:
    text = (ADT_A01 + "\r\r" + ORU_R01 + "\r").replace("\r", ending)
    assert split_messages("\ufeff" + text) == [ADT_A01, ORU_R01]


def test_batch_envelopes_dropped() -> None:
    text = sample("python-hl7/sample_file1.hl7").decode()
    assert is_batch(text)
    messages = split_messages(text)
    assert len(messages) == 3
    assert [Message.parse(m).control_id for m in messages] == [
        "12334456778890", "12334456778891", "12334456778890"]
    assert all(m.startswith("MSH|") and "BHS" not in m and "BTS" not in m for m in messages)


@pytest.mark.parametrize(
    ("name", "count"),
    [("sample_batch.hl7", 1), ("sample_batch1.hl7", 2), ("sample_batch2.hl7", 2),
     ("sample_batch3.hl7", 1), ("sample_batch4.hl7", 1), ("sample_file.hl7", 1),
     ("sample_file2.hl7", 2), ("sample_file3.hl7", 1)],
)
def test_python_hl7_batches(name: str, count: int) -> None:
    assert len(split_messages(sample(f"python-hl7/{name}").decode())) == count


def test_corpus_multi_message_file() -> None:
    messages = split_messages(sample("hapi-hl7v2/example_oml_o21.hl7").decode())
    assert len(messages) == 13
    for i, text in enumerate(messages, start=1):
        assert text == sample(f"hapi-hl7v2/example_oml_o21-{i:02d}.hl7").decode()


def test_empty_input() -> None:
    assert split_messages("") == []
    assert split_messages("\r\n\n  \n") == []


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("PID|1\r", "not inside a message"),
        ("BHS|^~\\&\rEVN|A01\rBTS|0\r", "not inside a message"),
        ("BHS|^~\\&\r" + ADT_A01 + "BTS|1\rPID|1\r", "not inside a message"),
        ("BHS|^~\\&\r" + ADT_A01 + "BHS|^~\\&\r", "BHS inside an open batch"),
        ("FHS|^~\\&\r" + ADT_A01 + "FHS|^~\\&\r", "FHS inside an open file"),
    ],
)
def test_damaged_envelopes(text: str, reason: str) -> None:
    with pytest.raises(HL7ParseError, match=reason):
        split_messages(text)
