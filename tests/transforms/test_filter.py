"""Filters: each operator, nesting, reasons, and load-time checks."""

from __future__ import annotations

import pydantic
import pytest
from pydantic import TypeAdapter

from conduit.core.payload import XmlView, parse_payload
from conduit.hl7.message import Message
from conduit.transforms.filter import Condition, leaves

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


# --- JSON (JMESPath) and XML (XPath) fields ----------------------------------------------------

OBSERVATION = {"resourceType": "Observation", "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
               "valueQuantity": {"value": 72.0, "unit": "kg"}, "issued": True, "note": []}


def xml(text: str) -> XmlView:
    return parse_payload("xml", text.encode()).data  # type: ignore[no-any-return]


ORDER = xml('<o:LabOrder xmlns:o="urn:example:orders" id="42"><o:Patient><o:MRN>100001</o:MRN>'
            '</o:Patient><o:Test code="GLU"/><o:Test code="K"/></o:LabOrder>')


def test_json_fields_with_every_operator() -> None:
    assert cond({"json": "status", "equals": "final"}).evaluate(OBSERVATION) == (
        True, "status is 'final'")
    assert cond({"json": "code.coding[0].code", "in": ["29463-7", "8302-2"]}).passes(OBSERVATION)
    assert cond({"json": "code.coding[?system=='http://loinc.org'].code | [0]",
                 "matches": r"^\d+-\d$"}).passes(OBSERVATION)
    assert cond({"json": "subject.reference", "exists": False}).passes(OBSERVATION)
    assert cond({"json": "note", "exists": False}).passes(OBSERVATION)  # [] is empty
    passed, reason = cond({"json": "status", "equals": "preliminary"}).evaluate(OBSERVATION)
    assert (passed, reason) == (False, "status is 'final', expected 'preliminary'")


def test_json_numbers_and_booleans_compare_as_json_writes_them() -> None:
    assert cond({"json": "valueQuantity.value", "equals": 72}).passes(OBSERVATION)
    assert cond({"json": "issued", "equals": "true"}).passes(OBSERVATION)
    assert cond({"json": "length(code.coding)", "equals": 1}).passes(OBSERVATION)


def test_xml_fields_with_every_operator_and_namespaces() -> None:
    ns = {"o": "urn:example:orders"}
    assert cond({"xpath": "/o:LabOrder/o:Patient/o:MRN", "namespaces": ns,
                 "equals": "100001"}).evaluate(ORDER) == (
        True, "/o:LabOrder/o:Patient/o:MRN is '100001'")
    assert cond({"xpath": "string(/*/@id)", "in": ["41", "42"]}).passes(ORDER)
    assert cond({"xpath": "count(//*[local-name()='Test'])", "equals": 2}).passes(ORDER)
    assert cond({"xpath": "//o:Test/@code", "namespaces": ns, "matches": "^GL"}).passes(ORDER)
    assert cond({"xpath": "//o:Priority", "namespaces": ns, "exists": False}).passes(ORDER)
    assert not cond({"xpath": "//*[local-name()='MRN']", "equals": "9"}).passes(ORDER)


@pytest.mark.parametrize("bad, message", [
    ({"json": "status[", "equals": "x"}, "not a valid JMESPath expression"),
    ({"xpath": "/a[", "equals": "x"}, "not a valid XPath expression"),
    ({"xpath": "/o:a", "equals": "x"}, "not a valid XPath expression"),  # undeclared prefix
    ({"field": "MSH-9", "json": "a", "equals": "x"}, "exactly one of"),
    ({"json": "a", "namespaces": {"o": "urn:x"}, "equals": "x"}, "namespaces"),
])
def test_bad_json_and_xml_fields_are_rejected_at_load(bad: object, message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        cond(bad)


def test_a_condition_says_what_it_reads() -> None:
    rule = cond({"all": [{"json": "a", "exists": True},
                         {"not": {"any": [{"xpath": "/a", "equals": "1"},
                                          {"field": "MSH-9", "equals": "ADT"}]}}]})
    assert sorted(set(reads for _, reads in leaves(rule))) == ["hl7v2", "json", "xml"]
    assert [loc for loc, _ in leaves(rule)] == [
        ("all", 0, "json"), ("all", 1, "not", "any", 0, "xpath"),
        ("all", 1, "not", "any", 1, "field")]
