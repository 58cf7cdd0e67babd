"""The json-map step (JMESPath)."""

from __future__ import annotations

import orjson
import pydantic
import pytest

from conduit.core.errors import MessageError
from conduit.transforms.json_map import JsonMap, JsonMapOptions
from conduit.transforms.registry import StepState

ORDER = {"order": {"id": "A1", "items": [{"code": "GLU", "qty": 1}, {"code": "K", "qty": 2}]},
         "patient": {"mrn": "100001", "name": {"family": "Doe"}}}


def run(options: dict[str, object], data: object = ORDER) -> StepState:
    s = StepState(None, orjson.dumps(data).decode())  # type: ignore[arg-type]
    JsonMap(JsonMapOptions.model_validate(options))(s)
    return s


def test_mapping_builds_nested_objects_and_skips_misses() -> None:
    s = run({"mapping": {"id": "order.id", "patient.mrn": "patient.mrn",
                         "patient.family": "patient.name.family", "codes": "order.items[].code",
                         "missing": "nothing.here"}})
    assert s.body is not None
    assert orjson.loads(s.body) == {"id": "A1", "patient": {"mrn": "100001", "family": "Doe"},
                                    "codes": ["GLU", "K"]}


def test_expression_and_variable_target() -> None:
    s = run({"expression": "order.items[?qty > `1`].code | [0]", "to": "first_multi"})
    assert s.variables["first_multi"] == "K"
    assert s.body == orjson.dumps(ORDER).decode()


def test_errors() -> None:
    with pytest.raises(pydantic.ValidationError, match="invalid JMESPath"):
        JsonMapOptions(expression="order.[")
    with pytest.raises(pydantic.ValidationError, match="exactly one"):
        JsonMapOptions()
    with pytest.raises(MessageError, match="not JSON"):
        s = StepState(None, "<xml/>")  # type: ignore[arg-type]
        JsonMap(JsonMapOptions(expression="a"))(s)
