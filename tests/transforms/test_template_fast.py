"""Templates that only place message fields in text render without Jinja: byte for byte what
Jinja renders, on every corpus message; anything else still goes through Jinja."""

from __future__ import annotations

import jinja2
import pytest

from conduit.core.errors import HL7ParseError
from conduit.hl7.message import Message
from conduit.transforms.template import _ENV, compile_template, render_template
from tests.samples import corpus_files

FAST = [
    "{{ msg.text }}",
    "{{ msg['PID-5.1'] | upper }}",
    "out/{{ msg['MSH-10'] }}.hl7",
    "{{ msg['PID-5'] }}^{{ msg['PID-3[2].1'] | lower | trim }}",
    "{{ msg.control_id }}-{{ msg.message_type }}",
    "line one\n{{ msg['MSH-9.1'] }}\nline three\n",  # newlines become \r, trailing one kept
    "{{- msg['PID-8'] -}}  \n",
]
SLOW = [
    "{{ vars.x }}",
    "{% if msg['PID-8'] %}x{% endif %}",
    "{{ msg['PID-5.1'] | replace('A', 'B') }}",
    "{{ msg.get('PID-5.1', 'none') }}",
    "{{ msg.count('OBX') }}",
    "{{ vars }}",
    "{{ msg }}",
]
#: Fast as well when the caller passes every name they read (a file destination's path).
NAMED = [
    "{{ id }}.json",
    "{{ channel }}/{{ destination }}/{{ id }}-{{ msg['MSH-10'] }}.hl7",
    "{{ destination | upper }}-{{ id | trim }}",
]


def _messages() -> list[Message]:
    found = []
    for path in corpus_files():
        try:
            found.append(Message.parse(path.read_bytes()))
        except HL7ParseError:
            continue
    return found


@pytest.mark.parametrize("source", FAST)
def test_fast_templates_render_as_jinja_does(source: str) -> None:
    template = compile_template(source)
    assert template._conduit_fast is not None  # type: ignore[attr-defined]
    plain = _ENV.from_string(source)  # the same template, no fast path
    messages = _messages()
    assert len(messages) > 150
    for message in messages:
        assert render_template(template, message) == render_template(plain, message)


@pytest.mark.parametrize("source", SLOW)
def test_other_templates_render_with_jinja(source: str) -> None:
    assert compile_template(source)._conduit_fast is None  # type: ignore[attr-defined]


def test_without_a_message_jinja_answers() -> None:
    """No message: the fast path steps aside and Jinja says msg is undefined."""
    with pytest.raises(jinja2.UndefinedError):
        render_template(compile_template("{{ msg['PID-5'] }}"), None)


@pytest.mark.parametrize("source", NAMED)
def test_templates_with_names_render_as_jinja_does(source: str) -> None:
    template = compile_template(source)
    assert template._conduit_fast is not None  # type: ignore[attr-defined]
    plain = _ENV.from_string(source)
    for message in _messages()[:20]:
        for message_id in (7, None, "x"):
            extra = {"id": message_id, "channel": "adt", "destination": "archive"}
            assert (render_template(template, message, **extra)
                    == render_template(plain, message, **extra))


def test_names_without_a_message() -> None:
    """A path of names alone renders with no message; one reading msg still needs Jinja's
    answer that msg is undefined."""
    assert render_template(compile_template("{{ id }}.json"), None, id=42) == "42.json"
    with pytest.raises(jinja2.UndefinedError):
        render_template(compile_template("{{ id }}-{{ msg['MSH-10'] }}"), None, id=42)


def test_a_name_not_passed_is_left_to_jinja() -> None:
    """Not in the caller's names: a Jinja global renders as Jinja renders it, anything else
    is undefined (StrictUndefined raises), never an empty string or a KeyError."""
    message = _messages()[0]
    assert (render_template(compile_template("{{ range }}"), message)
            == render_template(_ENV.from_string("{{ range }}"), message))
    with pytest.raises(jinja2.UndefinedError):
        render_template(compile_template("{{ id }}.json"), message)
