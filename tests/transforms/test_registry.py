"""The step registry: a new step kind is one module registering one class."""

from __future__ import annotations

from conduit.transforms.registry import (
    STEPS,
    StepOptions,
    StepState,
    build_step,
    load_step_kinds,
    step,
)


def test_builtin_kinds_are_registered() -> None:
    assert {"set", "copy", "delete", "template"} <= set(load_step_kinds())


def test_registering_a_kind() -> None:
    class ShoutOptions(StepOptions):
        """Shout."""

        field: str

    @step("shout-test", ShoutOptions)
    class Shout:
        """Upper-case a field."""

        def __init__(self, options: ShoutOptions) -> None:
            self.label = f"shout {options.field}"
            self.field = options.field

        def __call__(self, state: StepState) -> None:
            state.variables["shouted"] = self.field

    try:
        kind = STEPS["shout-test"]
        assert kind.options is ShoutOptions
        assert kind.description == "Upper-case a field."
        built = build_step("shout-test", ShoutOptions(field="PID-5"))
        assert built.label == "shout PID-5"
    finally:
        del STEPS["shout-test"]
