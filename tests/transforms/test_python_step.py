"""The python step: module:function, the escape hatch."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from conduit.hl7.message import Message
from conduit.transforms.python_step import PythonOptions, PythonStep
from conduit.transforms.registry import StepState

MSG = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||42||doe^jo\r"


def test_file_function_changes_the_message(tmp_path: Path) -> None:
    (tmp_path / "fix.py").write_text(
        "def upper_name(state):\n"
        "    state.message.set('PID-5.1', state.message['PID-5.1'].upper())\n", encoding="utf-8")
    options = PythonOptions.model_validate("fix.py:upper_name", context={"base_dir": tmp_path})
    s = StepState(Message.parse(MSG))
    PythonStep(options)(s)
    assert s.message["PID-5.1"] == "DOE"


def test_returned_text_becomes_the_body(tmp_path: Path) -> None:
    (tmp_path / "render.py").write_text(
        "def render(state):\n    return 'id=' + state.message.control_id\n", encoding="utf-8")
    step = PythonStep(PythonOptions.model_validate({"function": "render.py:render"},
                                                   context={"base_dir": tmp_path}))
    assert step.label == "python render.py:render"
    s = StepState(Message.parse(MSG))
    step(s)
    assert s.body == "id=1"


def test_importable_module() -> None:
    assert PythonOptions.model_validate("os.path:basename").callable.__name__ == "basename"


def test_problems_found_at_load(tmp_path: Path) -> None:
    with pytest.raises(pydantic.ValidationError, match="expected module:function"):
        PythonOptions.model_validate("nocolon")
    with pytest.raises(pydantic.ValidationError, match="cannot import 'no_such_mod'"):
        PythonOptions.model_validate("no_such_mod:f")
    with pytest.raises(pydantic.ValidationError, match="has no function 'nope'"):
        PythonOptions.model_validate("json:nope")
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n", encoding="utf-8")
    with pytest.raises(pydantic.ValidationError, match="RuntimeError: boom"):
        PythonOptions.model_validate("broken.py:f", context={"base_dir": tmp_path})
