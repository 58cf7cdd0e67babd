"""The shared Jinja2 environment: HL7-exact line ends, sandbox, strictness, msg[...] paths."""

from __future__ import annotations

import jinja2
import pytest
from jinja2.sandbox import SecurityError

from conduit.hl7.message import Message
from conduit.transforms.template import (
    MessageView,
    TemplateProblem,
    compile_template,
    environment,
    is_template,
    render_template,
)

MSG = Message.parse("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|CTRL1|P|2.5\r"
                    "PID|1||42~77||DOE^JO\rOBX|1|ST|X||one\rOBX|2|ST|X||two\r")


def test_cr_separators_and_trailing_cr_come_out_byte_exact() -> None:
    body = "MSH|^~\\&|CONDUIT|{{ msg['MSH-4'] }}\rPID|1||{{ msg['PID-3'] }}\r"
    out = render_template(compile_template(body), MSG)
    assert out == "MSH|^~\\&|CONDUIT|B\rPID|1||42\r"


def test_yaml_style_lines_become_cr_segments_keeping_the_last() -> None:
    body = "MSH|^~\\&|X\nPID|1||{{ msg['PID-5.1'] }}\n"
    assert render_template(body, MSG) == "MSH|^~\\&|X\rPID|1||DOE\r"
    assert render_template("A\r\nB\r\n", MSG) == "A\rB\r"


def test_environment_settings() -> None:
    env = environment()
    assert env.newline_sequence == "\r"
    assert env.keep_trailing_newline is True
    assert env.undefined is jinja2.StrictUndefined
    assert env.autoescape is False


def test_message_view_reads_paths_and_helpers() -> None:
    view = MessageView(MSG)
    assert view["PID-5.1"] == "DOE"
    assert view["ZZZ-1"] == ""
    assert view.get("PID-19", "none") == "none"
    assert view.repetitions("PID-3") == ["42", "77"]
    assert view.count("OBX") == 2
    assert view.control_id == "CTRL1"
    assert view.message_type == "ADT^A01"
    assert render_template("{{ msg['OBX[2]-5'] }}|{{ msg.count('OBX') }}", MSG) == "two|2"


def test_templates_cannot_change_the_message_or_escape_the_sandbox() -> None:
    with pytest.raises(SecurityError):
        render_template("{{ msg._message.set('PID-5', 'X') }}", MSG)
    with pytest.raises(jinja2.UndefinedError):
        render_template("{{ msg.set('PID-5', 'X') }}", MSG)
    assert MSG.get("PID-5.1") == "DOE"


def test_undefined_names_fail_loudly() -> None:
    with pytest.raises(jinja2.UndefinedError):
        render_template("{{ nothing }}", MSG)


def test_variables_and_extras_are_in_scope() -> None:
    assert render_template("{{ vars.a }}-{{ id }}", None, {"a": "x"}, id=7) == "x-7"


def test_escape_filters_use_the_message_separators() -> None:
    assert render_template("{{ 'a|b^c' | hl7_escape }}", MSG) == "a\\F\\b\\S\\c"
    msg = Message.parse("MSH|^~\\&|A\rNTE|1||x\\T\\y\r")
    assert render_template("{{ msg['NTE-3'] | hl7_unescape }}", msg) == "x&y"


def test_syntax_errors_name_the_template_line() -> None:
    with pytest.raises(TemplateProblem, match="template line 2: syntax error"):
        compile_template("ok\n{{ broken }\n")


def test_literal_paths_are_checked_at_compile() -> None:
    with pytest.raises(TemplateProblem, match="template line 1: invalid HL7 path 'pid-5'"):
        compile_template("{{ msg['pid-5'] }}")
    with pytest.raises(TemplateProblem, match="invalid HL7 path 'PID-0'"):
        compile_template("{{ msg.get('PID-0') }}")


def test_compiles_once_per_text() -> None:
    assert compile_template("{{ 1 }}") is compile_template("{{ 1 }}")


def test_is_template() -> None:
    assert is_template("{{ x }}") and is_template("{% if x %}{% endif %}")
    assert not is_template("plain text")
