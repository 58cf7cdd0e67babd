"""Opt-in strict validation through hl7apy."""

from __future__ import annotations

from conduit.hl7.message import Message
from conduit.hl7.strict import validate_strict
from tests.samples import sample


def test_valid_message_has_no_problems() -> None:
    assert validate_strict(Message.parse(sample("hapi-hl7v2/omd_o03.hl7"))) == []


def test_problems_are_readable() -> None:
    problems = validate_strict(Message.parse(sample("hl7apy/invalid_rsp_k21.hl7")))
    assert problems
    assert all(isinstance(p, str) and p for p in problems)
    assert all("None" not in p for p in problems)


def test_unknown_structure_is_named() -> None:
    problems = validate_strict(Message.parse(sample("microsoft-fhir-converter/ADT-A07-02.hl7")))
    assert problems == ["message structure 'ADT_A07' is not defined in HL7 2.8"]


def test_message_hl7apy_cannot_read() -> None:
    problems = validate_strict(Message.parse(sample("hapi-hl7v2/messages-04.hl7")))
    assert len(problems) == 1 and "encoding chars" in problems[0]


def test_warnings_only_on_request() -> None:
    msg = Message.parse(sample("hapi-hl7v2/omd_o03.hl7"))
    with_warnings = validate_strict(msg, include_warnings=True)
    assert with_warnings and all(p.startswith("warning: ") for p in with_warnings)
    assert "warning: value not in table HL70001 in element PID.PID_8" in with_warnings
    assert not any("CIP" in p for p in with_warnings)  # values never appear
