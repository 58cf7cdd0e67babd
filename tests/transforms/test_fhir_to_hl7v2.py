"""The fhir-to-hl7v2 step: ADT and ORU from FHIR, valid for hl7apy (strict) at each version."""

from __future__ import annotations

from typing import Any

import orjson
import pydantic
import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from conduit.core.errors import MessageError
from conduit.engine.components import default_registry
from conduit.fhir import convert, dumps
from conduit.hl7.batch import split_messages
from conduit.hl7.message import Message
from conduit.transforms.fhir_to_hl7v2 import FhirToHl7v2, FhirToHl7v2Options
from conduit.transforms.registry import StepState
from tests.samples import ADT_A01, ORU_R01, corpus_files

PATIENT: dict[str, Any] = {
    "resourceType": "Patient", "id": "p1",
    "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": "MRN-1",
                    "type": {"coding": [{"code": "MR"}]}}],
    "name": [{"family": "O'Brien|Smith", "given": ["Ann", "Marie"], "use": "official"}],
    "gender": "female", "birthDate": "1980-02-29",
    "address": [{"line": ["1 Main St", "Apt 2"], "city": "Springfield", "postalCode": "12345",
                 "use": "home"}],
    "telecom": [{"system": "phone", "value": "(555)555-1234", "use": "home"},
                {"system": "email", "value": "ann@example.org"}],
}
ENCOUNTER: dict[str, Any] = {
    "resourceType": "Encounter", "id": "e1", "status": "in-progress",
    "class": {"code": "IMP"}, "subject": {"reference": "Patient/p1"},
    "identifier": [{"value": "V42"}], "period": {"start": "2024-01-02T03:04:05+01:00"},
}


def run(data: dict[str, Any], **options: Any) -> str:
    state = StepState(None, orjson.dumps(data).decode())  # type: ignore[arg-type]
    FhirToHl7v2(FhirToHl7v2Options.model_validate(options))(state)
    assert state.body is not None
    return state.body


def strict(text: str) -> Any:
    message = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    assert message.validate()
    return message


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources]}


def test_registered() -> None:
    spec = default_registry().steps["fhir-to-hl7v2"]
    assert spec.options is FhirToHl7v2Options
    assert (spec.needs, spec.produces) == (("fhir", "json"), "hl7v2")


def test_patient_becomes_adt_a08_with_escaped_text() -> None:
    text = run(PATIENT)
    msg = Message.parse(text)
    assert msg.message_type == "ADT^A08"
    assert msg["MSH-12"] == "2.5.1"
    assert msg["PID-3.1"] == "MRN-1"
    assert msg["PID-3.4.2"] == "2.16.840.1.113883.19.5"
    assert msg["PID-5.1"] == "O'Brien\\F\\Smith"  # the | inside a name is escaped
    assert msg["PID-7"] == "19800229"
    assert msg["PID-8"] == "F"
    assert msg["PID-11.3"] == "Springfield"
    assert msg["PV1-2"] == "N"  # no Encounter: not applicable
    strict(text)


def test_bundle_of_patient_and_encounter_becomes_a04() -> None:
    text = run(bundle(PATIENT, ENCOUNTER), event="A04")
    msg = Message.parse(text)
    assert msg.message_type == "ADT^A04"
    assert msg["PV1-2"] == "I"
    assert msg["PV1-19.1"] == "V42"
    assert msg["PV1-44"] == "20240102030405+0100"
    strict(text)


@pytest.mark.parametrize("version", ["2.3.1", "2.4", "2.5", "2.5.1", "2.6"])
def test_round_trip_of_v2_through_fhir_is_strictly_valid(version: str) -> None:
    for source in (ADT_A01, ORU_R01):
        fhir = orjson.loads(dumps(convert(Message.parse(source))))
        text = run(fhir, version=version)
        strict(text)
        back = Message.parse(text)
        assert back["MSH-12"] == version
        assert back["PID-3.1"] == "PATID1234"
        assert back["PID-5.1"] == "TESTPATIENT"


def test_oru_keeps_values_units_and_notes() -> None:
    fhir = orjson.loads(dumps(convert(Message.parse(ORU_R01))))
    msg = Message.parse(run(fhir))
    assert msg.message_type == "ORU^R01"
    assert msg["OBR-4.1"] == "GLU"
    obx = msg.segments("OBX")
    assert [o.get("2") for o in obx] == ["NM", "ST", "NM"]
    assert obx[0].get("5") == "5.4" and obx[0].get("6") == "mmol/L"
    assert obx[1].get("5") == "Fasting \\T\\ rested"
    assert obx[0].get("7") == "3.9-5.8"
    assert msg["NTE-3"] == "Line one\\.br\\Line two"


def test_corpus_round_trip_sample_is_strictly_valid() -> None:
    # merges (A40: the old and the new Patient) and BAR^P02 hold several patients: split
    files = [p for p in corpus_files() if "microsoft-fhir-converter" in p.parts][::7]
    for path in files:
        fhir = orjson.loads(dumps(convert(Message.parse(path.read_bytes()))))
        text = run(fhir, patients="split")
        for message in split_messages(text) if text.startswith("BHS") else [text]:
            strict(message)


def test_nothing_to_write_is_a_message_error() -> None:
    with pytest.raises(MessageError, match="nothing to write"):
        run({"resourceType": "Organization", "id": "o"})
    with pytest.raises(MessageError, match="not JSON"):
        state = StepState(None, "{nope")  # type: ignore[arg-type]
        FhirToHl7v2(FhirToHl7v2Options())(state)


def test_versions_hl7apy_cannot_check_are_refused() -> None:
    with pytest.raises(pydantic.ValidationError):
        FhirToHl7v2Options.model_validate({"version": "2.3"})
