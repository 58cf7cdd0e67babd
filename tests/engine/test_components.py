"""Loading components into a registry, and what is built from one: the channel model, the
schema and the README tables, the same whatever order the modules registered in."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conduit.core.errors import ConfigError
from conduit.core.registry import REGISTRY, Registry
from conduit.engine.channel import channel_model
from conduit.engine.components import component_modules, default_registry, load_components
from conduit.engine.loader import load_channel
from conduit.engine.schema import readme_table, schema_text
from conduit.transforms.registry import StepOptions, StepState


class NeedsHl7Options(StepOptions):
    """A fake step's options."""

    field: str


class NeedsHl7:
    """A fake step that reads HL7 v2 fields."""

    def __init__(self, options: NeedsHl7Options) -> None:
        self.label = f"fake {options.field}"

    def __call__(self, state: StepState) -> None:
        state.message.get("PID-3")


def test_every_module_of_both_packages_is_loaded() -> None:
    modules = component_modules()
    assert {"conduit.connectors.mllp", "conduit.transforms.fields",
            "conduit.transforms.json_map"} <= set(modules)
    registered = {spec.module for spec in default_registry().specs()}
    assert registered <= set(modules)


def test_schema_and_tables_do_not_depend_on_the_load_order() -> None:
    forward, backward = Registry(), Registry()
    load_components(forward, component_modules())
    load_components(backward, reversed(component_modules()))
    assert list(forward.steps) != list(backward.steps)  # the registries do differ in order
    assert schema_text(forward) == schema_text(backward) == schema_text()
    for table in ("connectors", "steps"):
        assert readme_table(table, forward) == readme_table(table, backward)


def test_the_channel_model_is_built_per_registry_and_cached() -> None:
    registry = load_components(Registry())
    model = channel_model(registry)
    assert channel_model(registry) is model
    assert model is not channel_model()
    registry.step("fake-hl7", NeedsHl7Options, needs=["hl7v2"])(NeedsHl7)
    rebuilt = channel_model(registry)
    assert rebuilt is not model  # the registry changed: a new step kind is accepted
    assert "fake-hl7" not in REGISTRY.steps


JSON_CHANNEL = """\
    name: orders
    source: {type: http, port: 0}
    transform:
      - template: {body: "{{ vars.body | tojson }}"}
      - {step}
    destinations:
      - {name: archive, type: file, path: out/x.json}
    """


def write(tmp_path: Path, step: str) -> Path:
    path = tmp_path / "orders.yaml"
    path.write_text(textwrap.dedent(JSON_CHANNEL).replace("{step}", step), encoding="utf-8")
    return path


def problems(path: Path, registry: Registry | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_channel(path, env={}, registry=registry)
    return caught.value.problems


def test_a_json_channel_refuses_an_hl7_step_with_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "set: {field: PID-5.1, value: X}")
    assert problems(path) == [
        f"{path}:5: transform[1].set: step 'set' needs hl7v2; here the message is json "
        f"(the channel's data_type)"]


def test_a_step_registered_in_a_test_registry_is_checked_the_same_way(tmp_path: Path) -> None:
    registry = load_components(Registry())
    registry.step("fake-hl7", NeedsHl7Options, needs=["hl7v2"])(NeedsHl7)
    path = write(tmp_path, "fake-hl7: {field: PID-3}")
    assert problems(path, registry) == [
        f"{path}:5: transform[1].fake-hl7: step 'fake-hl7' needs hl7v2; here the message is "
        f"json (the channel's data_type)"]
    unknown = problems(path)  # the default registry does not know the fake step
    assert len(unknown) == 1 and "unknown step 'fake-hl7'" in unknown[0]
