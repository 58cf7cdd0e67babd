"""The pure pipeline: statuses, reasons, routes, what destinations get, and traces."""

from __future__ import annotations

from typing import Any

import pytest

from conduit.engine.channel import channel_model
from conduit.engine.pipeline import Pipeline, PipelineResult, Route

ADT_A01 = (b"MSH|^~\\&|REG|HOSP|CONDUIT|ARCH|20240105083000||ADT^A01^ADT_A01|MSG1|P|2.5.1\r"
           b"PID|1||100001^^^HOSP^MR||Doe^Jane\rZPI|1|note\r")
ADT_A03 = ADT_A01.replace(b"ADT^A01^ADT_A01", b"ADT^A03^ADT_A03")
ORU = ADT_A01.replace(b"ADT^A01^ADT_A01", b"ORU^R01^ORU_R01")


def pipeline(**changes: Any) -> Pipeline:
    data: dict[str, Any] = {
        "name": "p",
        "source": {"type": "mllp", "port": 2575},
        "filter": {"field": "MSH-9.1", "equals": "ADT"},
        "transform": [{"set": {"field": "PID-5.1", "value": "{{ msg['PID-5.1'] | upper }}"}},
                      {"delete": {"field": "ZPI"}}],
        "destinations": [
            {"name": "archive", "type": "file", "path": "x"},
            {"name": "downstream", "type": "mllp", "host": "h", "port": 1,
             "when": {"field": "MSH-9.2", "in": ["A01", "A04"]}},
        ],
    }
    data.update(changes)
    return Pipeline(channel_model().model_validate(data))


def test_transformed_with_routes_in_channel_order() -> None:
    result = pipeline().process(ADT_A01)
    expected = (b"MSH|^~\\&|REG|HOSP|CONDUIT|ARCH|20240105083000||ADT^A01^ADT_A01|MSG1|P|2.5.1\r"
                b"PID|1||100001^^^HOSP^MR||DOE^Jane\r")
    assert result == PipelineResult("TRANSFORMED", None, result.message, expected,
                                    [Route("archive", expected, None),
                                     Route("downstream", expected, None)], [])
    assert result.message is not None and result.message.get("PID-5.1") == "DOE"


def test_when_filter_gives_a_route_without_content_and_a_reason() -> None:
    result = pipeline().process(ADT_A03)
    assert result.status == "TRANSFORMED"
    assert result.routes[0].content is not None
    assert result.routes[1] == Route("downstream", None,
                                     "MSH-9.2 is 'A03', expected one of 'A01', 'A04'")


def test_filtered_is_an_outcome_with_a_reason() -> None:
    result = pipeline().process(ORU)
    assert (result.status, result.reason) == ("FILTERED", "MSH-9.1 is 'ORU', expected 'ADT'")
    assert result.routes == [] and result.transformed is None
    assert result.message is not None


@pytest.mark.parametrize("raw", [b"", b"garbage", b"\x00\x01\x02binary", b"PID|1||x\r"])
def test_garbage_is_an_error_not_an_exception(raw: bytes) -> None:
    result = pipeline().process(raw)
    assert result.status == "ERROR"
    assert result.reason is not None and result.reason.startswith("not an HL7 v2 message")
    assert result.message is None and result.routes == []


def test_a_failing_step_is_an_error_naming_the_step_not_the_data() -> None:
    broken = pipeline(transform=[{"delete": {"field": "ZPI"}},
                                 {"set": {"field": "ZZZ-1", "value": "x", "if_missing": "error"}}])
    result = broken.process(ADT_A01)
    assert result.status == "ERROR"
    assert result.reason is not None
    assert result.reason.startswith("transform step 2 (set ZZZ-1) failed: KeyError")
    assert "Doe" not in result.reason


def test_a_template_error_at_runtime_is_an_error() -> None:
    result = pipeline(transform=[{"template": {"body": "{{ vars.missing.deeper }}"}}]).process(
        ADT_A01)
    assert result.status == "ERROR"
    assert result.reason is not None
    assert result.reason.startswith("transform step 1 (template body) failed: UndefinedError")


def test_destinations_get_the_template_body_when_a_template_ran() -> None:
    body = "MSH|^~\\&|OUT\nPID|1||{{ msg['PID-3.1'] }}|{{ msg['PID-5.1'] }}\n"
    result = pipeline(transform=[{"set": {"field": "PID-5.1", "value": "X"}},
                                 {"template": {"body": body}}]).process(ADT_A01)
    assert result.routes[0].content == b"MSH|^~\\&|OUT\rPID|1||100001|X\r"
    assert result.transformed is not None
    assert b"PID|1||100001^^^HOSP^MR||X^Jane" in result.transformed


def test_content_keeps_the_message_charset() -> None:
    raw = ("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5|||||||8859/1\r"
           "PID|1||1||Müller^Zoë\r").encode("latin-1")
    result = pipeline(transform=[{"template": {"body": "{{ msg['PID-5.2'] }}"}}]).process(raw)
    assert result.routes[0].content == "Zoë".encode("latin-1")
    assert result.transformed == raw


def test_no_filter_and_no_steps_passes_the_message_through_unchanged() -> None:
    result = pipeline(filter=None, transform=[]).process(ORU)
    assert result.status == "TRANSFORMED"
    assert result.transformed == ORU


def test_strict_validation_failure_is_an_error() -> None:
    result = pipeline(validate="strict").process(b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\r"
                                                 b"ZZZ|nonsense\rPID|1\r")
    assert result.status == "ERROR"
    assert result.reason is not None and result.reason.startswith("strict validation failed")


def test_trace_shows_every_stage() -> None:
    result = pipeline().process(ADT_A03, trace=True)
    names = [name for name, _ in result.stages]
    assert names == ["raw", "filter", "after step 1 (set PID-5.1)", "after step 2 (delete ZPI)",
                     "destination archive", "destination downstream"]
    stages = dict(result.stages)
    assert stages["filter"] == "passed: MSH-9.1 is 'ADT'"
    assert "DOE^Jane" in stages["after step 1 (set PID-5.1)"]
    assert "ZPI" in stages["after step 1 (set PID-5.1)"]
    assert "ZPI" not in stages["after step 2 (delete ZPI)"]
    assert stages["destination downstream"].startswith("filtered: MSH-9.2 is 'A03'")


def test_trace_of_a_filtered_and_a_broken_message() -> None:
    assert pipeline().process(ORU, trace=True).stages[-1] == (
        "filter", "filtered: MSH-9.1 is 'ORU', expected 'ADT'")
    stages = pipeline().process(b"nope", trace=True).stages
    assert stages[0] == ("raw", "nope")
    assert stages[-1][0] == "error"


def test_no_stages_without_trace() -> None:
    assert pipeline().process(ADT_A01).stages == []
