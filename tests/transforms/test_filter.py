"""Filters: each operator, nesting, reasons, and load-time checks."""

from __future__ import annotations

import pydantic
import pytest
from pydantic import TypeAdapter

from conduit.hl7.message import Message
from conduit.transforms.filter import Condition

ADAPTER: TypeAdapter[Condition] = TypeAdapter(Condition)
ADT = Message.parse("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||42^^^H^MR~7^^^X||DOE^JO\r")


def cond(data: object) -> Condition:
    return ADAPTER.validate_python(data)


def test_equals_passes_and_fails_with_reasons() -> None:
    assert cond({"field": "MSH-9.1", "equals": "ADT"}).evaluate(ADT) == (True, "MSH-9.1 is 'ADT'")
    assert cond({"field": "MSH-9.1", "equals": "ORU"}).evaluate(ADT) == (
        False, "MSH-9.1 is 'ADT', expected 'ORU'")


def test_equals_reads_numbers_as_text() -> None:
    assert cond({"field": "PID-1", "equals": 1}).passes(ADT)


def test_in() -> None:
    assert cond({"field": "MSH-9.2", "in": ["A01", "A04"]}).passes(ADT)
    passed, reason = cond({"field": "MSH-9.2", "in": ["A03", "A08"]}).evaluate(ADT)
    assert not passed
    assert reason == "MSH-9.2 is 'A01', expected one of 'A03', 'A08'"


def test_matches_searches_with_a_compiled_regex() -> None:
    assert cond({"field": "PID-3.1", "matches": r"^\d+$"}).passes(ADT)
    assert cond({"field": "PID-3[2].1", "matches": "7"}).passes(ADT)
    passed, reason = cond({"field": "PID-5.1", "matches": "^X"}).evaluate(ADT)
    assert not passed
    assert reason == "PID-5.1 is 'DOE', expected to match '^X'"


def test_exists_true_and_false() -> None:
    assert cond({"field": "PID-5.2", "exists": True}).evaluate(ADT) == (True, "PID-5.2 is present")
    assert cond({"field": "ZPI", "exists": False}).passes(ADT)
    assert cond({"field": "PID-19", "exists": True}).evaluate(ADT) == (
        False, "PID-19 is missing, expected present")


def test_all_reports_the_first_failure_and_all_passes() -> None:
    rule = cond({"all": [{"field": "MSH-9.1", "equals": "ADT"},
                         {"field": "MSH-9.2", "equals": "A04"}]})
    assert rule.evaluate(ADT) == (False, "MSH-9.2 is 'A01', expected 'A04'")
    rule = cond({"all": [{"field": "MSH-9.1", "equals": "ADT"},
                         {"field": "MSH-9.2", "equals": "A01"}]})
    assert rule.evaluate(ADT) == (True, "MSH-9.1 is 'ADT' and MSH-9.2 is 'A01'")


def test_any_and_not_nest() -> None:
    rule = cond({"any": [{"field": "MSH-9.1", "equals": "ORU"},
                         {"not": {"field": "PID-5.1", "equals": "DOE"}}]})
    passed, reason = rule.evaluate(ADT)
    assert not passed
    assert reason == ("none passed: MSH-9.1 is 'ADT', expected 'ORU'; "
                      "not (PID-5.1 is 'DOE')")
    assert cond({"not": {"field": "MSH-9.1", "equals": "ORU"}}).passes(ADT)


def test_long_values_are_cut_short_in_reasons() -> None:
    msg = Message.parse("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rNTE|1||" + "x" * 200 + "\r")
    _, reason = cond({"field": "NTE-3", "equals": "y"}).evaluate(msg)
    assert len(reason) < 80
    assert "..." in reason


@pytest.mark.parametrize("bad", [
    {"field": "MSH-9.1"},                                  # no operator
    {"field": "MSH-9.1", "equals": "A", "in": ["B"]},      # two operators
    {"field": "msh-9", "equals": "A"},                     # bad path
    {"field": "MSH-9", "matches": "("},                    # bad regex
    {"field": "MSH-9", "equals": "A", "extra": 1},         # unknown key
    {"all": []},                                           # empty group
    {"field": "MSH-9", "exists": "maybe"},                 # not a boolean
    "MSH-9.1 == 'ADT'",                                    # never evaluated as code
])
def test_bad_conditions_are_rejected_at_load(bad: object) -> None:
    with pytest.raises(pydantic.ValidationError):
        cond(bad)


def test_bad_regex_says_why() -> None:
    with pytest.raises(pydantic.ValidationError, match="not a valid regular expression"):
        cond({"field": "MSH-9", "matches": "[a-"})
