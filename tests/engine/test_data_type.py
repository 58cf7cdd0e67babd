"""Channels whose messages are not HL7 v2: data_type defaults, load-time rules, the pipeline's
body path, and the payload parser (JSON, XML, FHIR, text)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from conduit.core.errors import MessageError
from conduit.core.payload import parse_payload
from conduit.engine.channel import Channel, channel_model
from conduit.engine.pipeline import Pipeline

ARCHIVE = [{"name": "archive", "type": "file", "path": "out/{{ id }}"}]


def channel(source: dict[str, Any], **extra: Any) -> Channel:
    return channel_model().model_validate({"name": "c", "source": source,
                                   "destinations": extra.pop("destinations", ARCHIVE), **extra})


@pytest.mark.parametrize("source, expected", [
    ({"type": "mllp", "port": 0}, "hl7v2"),
    ({"type": "http", "port": 0}, "json"),
    ({"type": "fhir", "port": 0}, "fhir"),
    ({"type": "soap", "port": 0, "service": "S", "namespace": "urn:x",
      "operations": [{"name": "Op", "input": [{"name": "a"}]}]}, "xml"),
    ({"type": "database", "url": "sqlite://", "query": "SELECT 1", "mark": "SELECT 1"}, "json"),
    ({"type": "file", "directory": "in"}, "hl7v2"),
])
def test_data_type_defaults_to_what_the_source_carries(source: dict[str, Any],
                                                       expected: str) -> None:
    assert channel(source).data_type == expected


def test_explicit_data_type_wins() -> None:
    assert channel({"type": "http", "port": 0}, data_type="hl7v2").data_type == "hl7v2"


@pytest.mark.parametrize("extra, message", [
    ({"filter": {"field": "MSH-9.1", "equals": "ADT"}},
     "'field' reads an HL7 v2 field; this channel's data_type is json: read it with 'json:' "
     "(JMESPath)"),
    ({"validate": "strict"}, "validate: strict checks HL7 v2"),
    ({"transform": [{"set": {"field": "PID-5.1", "value": "X"}}]}, "step 'set' needs hl7v2"),
    ({"destinations": [{**ARCHIVE[0], "when": {"field": "MSH-9.1", "equals": "ADT"}}]},
     "destination archive: 'field' reads an HL7 v2 field; this channel's data_type is json"),
])
def test_hl7_only_features_are_refused_for_other_data_types(extra: dict[str, Any],
                                                             message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        channel({"type": "http", "port": 0}, **extra)


MLLP = {"type": "mllp", "port": 0}
FHIR = {"type": "fhir", "port": 0}
SET = {"set": {"field": "PID-5.1", "value": "X"}}
TO_FHIR = {"hl7v2-to-fhir": {}}
TO_V2 = {"fhir-to-hl7v2": {}}
JSON_MAP = {"json-map": {"expression": "entry"}}


@pytest.mark.parametrize("source, steps", [
    (MLLP, [SET, TO_FHIR, JSON_MAP, TO_V2]),  # json-map reads the Bundle hl7v2-to-fhir made
    (FHIR, [JSON_MAP, TO_V2]),
    (MLLP, [{"template": {"body": "x"}}, SET]),  # a template keeps the data type
])
def test_steps_fit_the_data_type_they_find(source: dict[str, Any],
                                           steps: list[dict[str, Any]]) -> None:
    assert len(channel(source, transform=steps).transform) == len(steps)


@pytest.mark.parametrize("source, steps, message", [
    (MLLP, [JSON_MAP], "step 'json-map' needs json or fhir; here the message is hl7v2"),
    (MLLP, [TO_FHIR, SET], "step 'set' needs hl7v2; here the message is fhir (made by step 1, "
                           "hl7v2-to-fhir)"),
    (FHIR, [TO_V2, SET], "step 'set' needs hl7v2; here the message is HL7 v2 text (made by "
                         "step 1, fhir-to-hl7v2), not a parsed message"),
    (FHIR, [{"xpath": {"extract": {"a": "/a"}}}], "step 'xpath' needs xml; here the message is "
                                                 "fhir"),
])
def test_a_step_that_does_not_fit_the_data_type_it_finds_is_refused(
        source: dict[str, Any], steps: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        channel(source, transform=steps)


def test_pipeline_passes_json_through_and_templates_see_vars_body() -> None:
    untouched = Pipeline(channel({"type": "http", "port": 0}))
    raw = b'{"mrn": "1", "name": "Doe"}'
    result = untouched.process(raw)
    assert (result.status, result.routes[0].content) == ("TRANSFORMED", raw)

    templated = Pipeline(channel({"type": "http", "port": 0}, transform=[
        {"template": {"body": '{"id": {{ vars.body.mrn | tojson }}}'}}]))
    result = templated.process(raw, trace=True)
    assert result.routes[0].content == b'{"id": "1"}'
    assert [stage for stage, _ in result.stages][-1] == "destination archive"

    broken = templated.process(b'{"mrn": ')
    assert broken.status == "ERROR" and broken.reason.startswith("not a json message")
    failing = templated.process(b'{"other": 1}')
    assert failing.status == "ERROR" and "transform step 1" in (failing.reason or "")


def test_payload_parsers() -> None:
    fhir = parse_payload("fhir", b'{"resourceType": "Observation", "id": "o1", '
                                 b'"subject": {"reference": "Patient/7"}}')
    assert (fhir.control_id, fhir.message_type, fhir.patient_id) == (
        "o1", "Observation", "Patient/7")
    patient = parse_payload("fhir", b'{"resourceType": "Patient", '
                                    b'"identifier": [{"value": "MRN-1"}]}')
    assert (patient.control_id, patient.patient_id) == ("MRN-1", "MRN-1")
    bundle = parse_payload("fhir", b'{"resourceType": "Bundle", "type": "transaction"}')
    assert bundle.message_type == "Bundle/transaction"
    with pytest.raises(MessageError, match="resourceType"):
        parse_payload("fhir", b'{"id": 1}')

    xml = parse_payload("xml", b'<r:Op xmlns:r="urn:x"><r:a>1</r:a><r:b>x</r:b>'
                               b'<r:b>y</r:b></r:Op>')
    assert xml.message_type == "Op"
    assert str(xml.data["a"]) == "1" and xml.data.get("missing", "-") == "-"
    assert [str(b) for b in xml.data.all("b")] == ["x", "y"]
    with pytest.raises(MessageError, match="not well-formed XML"):
        parse_payload("xml", b"<a>")
    external = parse_payload("xml", b'<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                                    b"<a>&e;</a>")
    assert "root:" not in external.data.text  # external entities are never read
    assert parse_payload("text", "h\u00e9".encode()).data == "h\u00e9"
    with pytest.raises(MessageError, match="not UTF-8"):
        parse_payload("text", b"\xff")


@pytest.mark.parametrize("source, extra, message", [
    (FHIR, {"filter": {"xpath": "/a", "exists": True}},
     "'xpath' reads XML; this channel's data_type is fhir: read it with 'json:' (JMESPath)"),
    ({"type": "http", "port": 0}, {"data_type": "xml",
                                   "filter": {"all": [{"json": "a", "exists": True}]}},
     "'json' reads JSON; this channel's data_type is xml: read it with 'xpath:' (XPath)"),
    (MLLP, {"filter": {"not": {"json": "a", "exists": True}}},
     "'json' reads JSON; this channel's data_type is hl7v2: read it with 'field:' (an HL7 v2 "
     "path)"),
    ({"type": "http", "port": 0}, {"data_type": "text", "filter": {"json": "a", "exists": True}},
     "'json' reads JSON; this channel's data_type is text, which no condition reads"),
])
def test_a_condition_that_reads_another_data_type_is_refused(
        source: dict[str, Any], extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        channel(source, **extra)


def test_filters_and_when_read_json_and_xml_bodies() -> None:
    lab = channel(FHIR, filter={"json": "resourceType", "equals": "Observation"},
                  destinations=[{**ARCHIVE[0], "when": {"json": "status", "in": ["final"]}},
                                {"name": "all", "type": "file", "path": "x"}])
    pipeline = Pipeline(lab)
    final = pipeline.process(b'{"resourceType": "Observation", "status": "final"}', trace=True)
    assert final.status == "TRANSFORMED"
    assert [(r.destination, r.filtered) for r in final.routes] == [
        ("archive", None), ("all", None)]
    assert ("filter", "passed: resourceType is 'Observation'") in final.stages
    draft = pipeline.process(b'{"resourceType": "Observation", "status": "preliminary"}')
    assert [(r.destination, r.filtered) for r in draft.routes] == [
        ("archive", "status is 'preliminary', expected one of 'final'"), ("all", None)]
    patient = pipeline.process(b'{"resourceType": "Patient"}')
    assert (patient.status, patient.reason) == (
        "FILTERED", "resourceType is 'Patient', expected 'Observation'")

    orders = Pipeline(channel({"type": "http", "port": 0}, data_type="xml",
                              filter={"xpath": "count(/order/test)", "equals": 2}))
    assert orders.process(b"<order><test/><test/></order>").status == "TRANSFORMED"
    assert orders.process(b"<order><test/></order>").reason == (
        "count(/order/test) is '1', expected '2'")
