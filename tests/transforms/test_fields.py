"""The set, copy and delete steps."""

from __future__ import annotations

import pydantic
import pytest

from conduit.hl7.message import Message
from conduit.transforms.fields import (
    CopyField,
    CopyOptions,
    DeleteField,
    DeleteOptions,
    SetField,
    SetOptions,
)
from conduit.transforms.registry import StepState

RAW = ("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\r"
       "PID|1||42^^^H^MR||doe^jo\rZPI|1|x\rZPI|2|y\r")


def state() -> StepState:
    return StepState(Message.parse(RAW))


def test_set_a_literal() -> None:
    s = state()
    SetField(SetOptions(field="PID-8", value="F"))(s)
    assert s.message.get("PID-8") == "F"


def test_set_a_template_reading_the_message() -> None:
    s = state()
    step = SetField(SetOptions.model_validate({"field": "PID-5.1",
                                               "value": "{{ msg['PID-5.1'] | upper }}"}))
    step(s)
    assert s.message.get("PID-5") == "DOE^jo"
    assert step.label == "set PID-5.1"


def test_set_rejects_a_bad_path_or_template_at_load() -> None:
    with pytest.raises(pydantic.ValidationError, match="invalid HL7 path"):
        SetOptions(field="PID5", value="x")
    with pytest.raises(pydantic.ValidationError, match="syntax error"):
        SetOptions(field="PID-5", value="{{ x")
    with pytest.raises(pydantic.ValidationError, match="Extra inputs"):
        SetOptions.model_validate({"field": "PID-5", "value": "x", "valu": "y"})


def test_a_missing_segment_is_skipped_or_an_error() -> None:
    s = state()
    before = s.message.encode()
    SetField(SetOptions(field="PV1-2", value="I"))(s)
    CopyField(CopyOptions.model_validate({"from": "PID-3.1", "to": "PV1-19"}))(s)
    assert s.message.encode() == before
    with pytest.raises(KeyError):
        SetField(SetOptions(field="PV1-2", value="I", if_missing="error"))(s)
    with pytest.raises(KeyError):
        CopyField(CopyOptions.model_validate(
            {"from": "PID-3.1", "to": "PV1-19", "if_missing": "error"}))(s)


def test_copy() -> None:
    s = state()
    step = CopyField(CopyOptions.model_validate({"from": "PID-3.1", "to": "PID-2"}))
    step(s)
    assert s.message.get("PID-2") == "42"
    assert step.label == "copy PID-3.1 to PID-2"


def test_delete_every_segment_one_segment_or_a_field() -> None:
    s = state()
    DeleteField(DeleteOptions(field="ZPI[2]"))(s)
    assert [seg for seg in s.message.encode().split("\r") if seg.startswith("ZPI")] == ["ZPI|1|x"]
    DeleteField(DeleteOptions(field="ZPI"))(s)
    assert "ZPI" not in s.message.encode()
    DeleteField(DeleteOptions(field="PID-5.2"))(s)
    assert s.message.get("PID-5.2") == ""
    assert s.message.get("PID-5.1") == "doe"
