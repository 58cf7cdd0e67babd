"""The channel model: unions built from the registries, defaults, the contract's keys."""

from __future__ import annotations

import pydantic
import pytest

from conduit.engine.channel import channel_model
from conduit.engine.components import default_registry
from conduit.transforms.filter import Equals, In

BASE = {
    "name": "adt-to-file",
    "source": {"type": "mllp", "host": "127.0.0.1", "port": 2575},
    "destinations": [{"name": "archive", "type": "file", "path": "out/x.hl7"}],
}


def test_contract_keys_and_defaults() -> None:
    channel = channel_model().model_validate({
        **BASE,
        "validate": "strict",
        "filter": {"all": [{"field": "MSH-9.1", "equals": "ADT"}]},
        "transform": [{"set": {"field": "PID-5.1", "value": "X"}},
                      {"copy": {"from": "PID-3.1", "to": "PID-2"}},
                      {"delete": {"field": "ZPI"}},
                      {"template": {"body": "x"}}],
        "destinations": [*BASE["destinations"],
                         {"name": "downstream", "type": "mllp", "host": "127.0.0.1",
                          "port": 2576, "when": {"field": "MSH-9.2", "in": ["A01", "A04"]}}],
    })
    assert channel.validation == "strict"
    assert [step.kind for step in channel.transform] == ["set", "copy", "delete", "template"]
    assert channel.transform[1].options.from_ == "PID-3.1"  # type: ignore[attr-defined]
    assert isinstance(channel.destinations[1].when, In)
    assert type(channel.source) is default_registry().sources["mllp"].config
    assert type(channel.destinations[0]) is default_registry().destinations["file"].config


def test_defaults() -> None:
    channel = channel_model().model_validate(BASE)
    assert channel.validation == "none"
    assert channel.filter is None
    assert channel.transform == []
    assert channel.description == ""


def test_a_destination_filter_is_the_same_condition_type() -> None:
    channel = channel_model().model_validate({**BASE, "destinations": [
        {"name": "a", "type": "file", "path": "x", "when": {"field": "MSH-9.1", "equals": "A"}}]})
    assert isinstance(channel.destinations[0].when, Equals)


@pytest.mark.parametrize("change", [
    {"name": "Upper"},
    {"name": "-leading-dash"},
    {"destinations": []},
    {"validate": "sometimes"},
    {"unknown": 1},
    {"transform": [{"set": {"field": "PID-5", "value": "x"}, "delete": {"field": "ZPI"}}]},
    {"transform": ["set"]},
])
def test_invalid_channels(change: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError):
        channel_model().model_validate({**BASE, **change})


def test_destination_names_must_be_unique() -> None:
    twice = [{"name": "a", "type": "file", "path": "x"}, {"name": "a", "type": "file", "path": "y"}]
    with pytest.raises(pydantic.ValidationError, match="'a' is used twice"):
        channel_model().model_validate({**BASE, "destinations": twice})


def test_every_channel_field_has_a_description_and_examples() -> None:
    for name, field in channel_model().model_fields.items():
        assert field.description, name
        assert field.examples, name
