"""The template step: the outbound body, inline or from a file."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from conduit.hl7.message import Message
from conduit.transforms.registry import StepState
from conduit.transforms.template_step import TemplateBody, TemplateOptions

MSG = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|C1|P|2.5\rPID|1||42||DOE^JO\r"


def test_inline_body_becomes_the_outbound_body_exactly() -> None:
    s = StepState(Message.parse(MSG))
    TemplateBody(TemplateOptions(body="MSH|^~\\&|OUT\nPID|1||{{ msg['PID-3'] }}\n"))(s)
    assert s.body == "MSH|^~\\&|OUT\rPID|1||42\r"
    assert s.message.encode() == MSG  # the message itself is unchanged


def test_file_is_read_relative_to_the_channel(tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_text('{"id": "{{ msg.control_id }}"}', encoding="utf-8")
    options = TemplateOptions.model_validate({"file": "t.j2"}, context={"base_dir": tmp_path})
    s = StepState(Message.parse(MSG))
    step = TemplateBody(options)
    step(s)
    assert s.body == '{"id": "C1"}'
    assert step.label == "template t.j2"


def test_exactly_one_of_body_or_file() -> None:
    with pytest.raises(pydantic.ValidationError, match="exactly one of 'body' or 'file'"):
        TemplateOptions()
    with pytest.raises(pydantic.ValidationError, match="exactly one"):
        TemplateOptions(body="x", file="y")


def test_missing_or_broken_file_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(pydantic.ValidationError, match="cannot read template file"):
        TemplateOptions.model_validate({"file": "nope.j2"}, context={"base_dir": tmp_path})
    (tmp_path / "bad.j2").write_text("line\n{% if %}\n", encoding="utf-8")
    with pytest.raises(pydantic.ValidationError, match=r"bad\.j2: template line 2"):
        TemplateOptions.model_validate({"file": "bad.j2"}, context={"base_dir": tmp_path})
