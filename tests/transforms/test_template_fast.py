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
    "{{ id }}.json",
    "{{ msg.count('OBX') }}",
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
