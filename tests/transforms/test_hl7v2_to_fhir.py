"""The hl7v2-to-fhir step: options, the outbound body, validation on demand."""

from __future__ import annotations

import orjson
import pydantic
import pytest

from conduit.core.errors import ValidationError
from conduit.engine.components import default_registry
from conduit.hl7.message import Message
from conduit.transforms.hl7v2_to_fhir import Hl7v2ToFhir, Hl7v2ToFhirOptions
from conduit.transforms.registry import StepState
from tests.samples import ADT_A01


def run(options: dict[str, object], text: str | bytes = ADT_A01) -> StepState:
    state = StepState(Message.parse(text))
    Hl7v2ToFhir(Hl7v2ToFhirOptions.model_validate(options))(state)
    return state


def test_registered_under_its_yaml_key() -> None:
    spec = default_registry().steps["hl7v2-to-fhir"]
    assert spec.options is Hl7v2ToFhirOptions
    assert (spec.needs, spec.produces) == (("hl7v2",), "fhir")


def test_body_is_a_transaction_bundle_and_the_message_is_untouched() -> None:
    state = run({})
    assert state.body is not None
    bundle = orjson.loads(state.body)
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "transaction"
    assert state.message.encode() == ADT_A01


def test_batch_and_validate_options() -> None:
    state = run({"bundle": "batch", "validate": True, "timezone": "America/New_York"})
    assert state.body is not None
    assert orjson.loads(state.body)["type"] == "batch"


def test_bad_options_are_refused_at_load() -> None:
    with pytest.raises(pydantic.ValidationError, match="unknown time zone"):
        Hl7v2ToFhirOptions.model_validate({"timezone": "Mars/Olympus"})
    with pytest.raises(pydantic.ValidationError):
        Hl7v2ToFhirOptions.model_validate({"bundle": "message"})
    with pytest.raises(pydantic.ValidationError):
        Hl7v2ToFhirOptions.model_validate({"pretty": True})


def test_validate_reports_the_element_not_the_data(monkeypatch: pytest.MonkeyPatch) -> None:
    from conduit.fhir import convert as real

    def broken(message: Message, options: object = None) -> dict[str, object]:
        bundle = real(message, options)  # type: ignore[arg-type]
        patient = next(e["resource"] for e in bundle["entry"]  # type: ignore[attr-defined]
                       if e["resource"]["resourceType"] == "Patient")
        patient["birthDate"] = "PHI-1970-99"
        return bundle

    monkeypatch.setattr("conduit.transforms.hl7v2_to_fhir.convert", broken)
    with pytest.raises(ValidationError) as info:
        run({"validate": True})
    assert "Patient (entry 0): birthDate" in str(info.value)
    assert "PHI" not in str(info.value)


def test_latin1_message_gives_ascii_safe_json() -> None:
    text = ADT_A01.replace("UNICODE UTF-8", "8859/1").replace("TESTPATIENT^ALPHA",
                                                              "TESTPATIENT^ANDRÉ")
    state = run({}, text.encode("latin-1"))
    assert state.body is not None
    assert "\\u00c9" in state.body
    assert orjson.loads(state.body)["entry"][0]["resource"]["name"][0]["given"][0] == "ANDRÉ"


def test_a_non_hl7_body_is_a_message_error() -> None:
    from conduit.core.errors import MessageError

    state = StepState(None, "{}")  # type: ignore[arg-type]
    with pytest.raises(MessageError, match="needs an HL7 v2 message"):
        Hl7v2ToFhir(Hl7v2ToFhirOptions())(state)
