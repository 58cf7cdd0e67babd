"""The registry instance: specs beside their constructors, declared capabilities, no globals."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from conduit.core.registry import REGISTRY, Registry, StepSpec
from conduit.engine.components import default_registry
from conduit.transforms.registry import StepOptions, StepState


class ShoutOptions(StepOptions):
    """Shout."""

    field: str


class Shout:
    """Upper-case a field."""

    def __init__(self, options: ShoutOptions) -> None:
        self.label = f"shout {options.field}"
        self.field = options.field

    def __call__(self, state: StepState) -> None:
        state.variables["shouted"] = self.field


def test_a_registry_is_an_instance_filled_by_its_decorators() -> None:
    registry = Registry()
    registry.step("shout-test", ShoutOptions, needs=["hl7v2"], produces="text")(Shout)
    spec = registry.steps["shout-test"]
    assert (spec.options, spec.factory, spec.needs, spec.produces) == (
        ShoutOptions, Shout, ("hl7v2",), "text")
    assert spec.description == spec.summary == "Upper-case a field."
    assert spec.module == __name__
    assert registry.build_step("shout-test", ShoutOptions(field="PID-5")).label == "shout PID-5"
    assert "shout-test" not in REGISTRY.steps  # the default instance is untouched


def test_the_default_registry_holds_every_builtin_with_its_capabilities() -> None:
    registry = default_registry()
    assert {"set", "copy", "delete", "template", "json-map", "xpath"} <= set(registry.steps)
    carries = {kind: spec.carries for kind, spec in registry.sources.items()}
    assert carries == {"mllp": "hl7v2", "file": "hl7v2", "http": "json", "fhir": "fhir",
                       "soap": "xml", "database": "json"}
    correlating = {k for k, spec in registry.destinations.items() if spec.sends_correlation_id}
    assert correlating == {"http", "fhir", "soap"}
    assert registry.steps["set"].needs == ("hl7v2",)
    assert registry.steps["json-map"].needs == ("json", "fhir")
    assert registry.steps["xslt"].needs == ("xml",)
    assert registry.steps["template"].needs == ()


def test_a_kind_registered_twice_by_different_code_is_refused() -> None:
    registry = Registry()
    registry.step("shout-test", ShoutOptions)(Shout)
    registry.step("shout-test", ShoutOptions)(Shout)  # the same class again (a re-import): fine

    class Other(Shout):
        pass

    with pytest.raises(ValueError, match="registered twice"):
        registry.step("shout-test", ShoutOptions)(Other)


def test_an_unknown_data_type_is_refused() -> None:
    class Options(BaseModel):
        pass

    with pytest.raises(ValueError, match="unknown data type 'hl7'"):
        Registry().add(StepSpec("x", Options, Shout, "", "", __name__, needs=("hl7",)))  # type: ignore[arg-type]


def test_version_changes_with_every_registration() -> None:
    registry = Registry()
    before = registry.version
    registry.step("shout-test", ShoutOptions)(Shout)
    assert registry.version > before
