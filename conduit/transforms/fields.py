"""Field steps: ``set``, ``copy`` and ``delete`` change the message in place.

Values are raw HL7 text: ``value: "DOE^JOHN"`` writes two components. Use the ``hl7_escape``
template filter to write delimiters literally.
"""

from __future__ import annotations

from pydantic import Field

from conduit.transforms.fieldpath import FieldPath
from conduit.transforms.registry import StepOptions, StepState, step
from conduit.transforms.template import TemplateText, compile_template, is_template, render_template


class SetOptions(StepOptions):
    """Write a value, literal or a Jinja2 template, into a field."""

    field: FieldPath
    value: TemplateText = Field(
        description="Raw HL7 text to write; may be a Jinja2 template reading msg['PATH'].",
        examples=["{{ msg['PID-5.1'] | upper }}", "CONDUIT"])


@step("set", SetOptions)
class SetField:
    """Write a value, literal or a Jinja2 template, into a field."""

    def __init__(self, options: SetOptions) -> None:
        self.label = f"set {options.field}"
        self._field = options.field
        self._literal = None if is_template(options.value) else options.value
        self._template = compile_template(options.value) if self._literal is None else None

    def __call__(self, state: StepState) -> None:
        if self._template is None:
            value = self._literal or ""
        else:
            value = render_template(self._template, state.message, state.variables)
        state.message.set(self._field, value)


class CopyOptions(StepOptions):
    """Copy one field's raw text to another field."""

    from_: FieldPath = Field(alias="from", description="The field to read.", examples=["PID-3.1"])
    to: FieldPath = Field(description="The field to write.", examples=["PID-2"])


@step("copy", CopyOptions)
class CopyField:
    """Copy one field's raw text to another field (an empty source empties the target)."""

    def __init__(self, options: CopyOptions) -> None:
        self.label = f"copy {options.from_} to {options.to}"
        self._source = options.from_
        self._target = options.to

    def __call__(self, state: StepState) -> None:
        state.message.set(self._target, state.message.get(self._source))


class DeleteOptions(StepOptions):
    """Remove a segment (every one of that name, or SEG[n]) or empty a field."""

    field: FieldPath = Field(description="A segment (ZPI, OBX[2]) or a field (PID-19).",
                             examples=["ZPI", "PID-19"])


@step("delete", DeleteOptions)
class DeleteField:
    """Remove a segment (all of that name, or just SEG[n]) or clear a field."""

    def __init__(self, options: DeleteOptions) -> None:
        self.label = f"delete {options.field}"
        self._path = options.field

    def __call__(self, state: StepState) -> None:
        state.message.delete(self._path)
