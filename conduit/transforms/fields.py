"""Field steps: ``set``, ``copy`` and ``delete`` change the message in place.

Values are raw HL7 text: ``value: "DOE^JOHN"`` writes two components. Use the ``hl7_escape``
template filter to write delimiters literally. Steps never add segments: writing into a segment
the message lacks is skipped (``if_missing: skip``, the default: an ADT^A20 has no PID) or an
error (``if_missing: error``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from conduit.core.registry import step
from conduit.hl7.pathtext import PathText
from conduit.transforms.registry import StepOptions, StepState
from conduit.transforms.template import TemplateText, compile_template, is_template, render_template

IfMissing = Literal["skip", "error"]
_IF_MISSING = "When the target segment is absent: skip the step, or fail the message (ERROR)."


class SetOptions(StepOptions):
    """Write a value, literal or a Jinja2 template, into a field."""

    field: PathText
    value: TemplateText = Field(
        description="Raw HL7 text to write; may be a Jinja2 template reading msg['PATH'].",
        examples=["{{ msg['PID-5.1'] | upper }}", "CONDUIT"])
    if_missing: IfMissing = Field(default="skip", description=_IF_MISSING, examples=["error"])


def _present(state: StepState, path: str, if_missing: str) -> bool:
    """Whether to write ``path``: its segment exists, or ``if_missing`` says raise instead."""
    return if_missing == "error" or state.message.get(path.split("-", 1)[0]) != ""


@step("set", SetOptions, needs=("hl7v2",),
      summary="write a literal or a template into an HL7 v2 field (by path, e.g. `PID-5.1`)")
class SetField:
    """Write a value, literal or a Jinja2 template, into a field."""

    def __init__(self, options: SetOptions) -> None:
        self.label = f"set {options.field}"
        self._field = options.field
        self._literal = None if is_template(options.value) else options.value
        self._template = compile_template(options.value) if self._literal is None else None
        self._if_missing = options.if_missing

    def __call__(self, state: StepState) -> None:
        if not _present(state, self._field, self._if_missing):
            return
        if self._template is None:
            value = self._literal or ""
        else:
            value = render_template(self._template, state.message, state.variables)
        state.message.set(self._field, value)


class CopyOptions(StepOptions):
    """Copy one field's raw text to another field."""

    from_: PathText = Field(alias="from", description="The field to read.", examples=["PID-3.1"])
    to: PathText = Field(description="The field to write.", examples=["PID-2"])
    if_missing: IfMissing = Field(default="skip", description=_IF_MISSING, examples=["error"])


@step("copy", CopyOptions, needs=("hl7v2",),
      summary="copy one HL7 v2 field to another")
class CopyField:
    """Copy one field's raw text to another field (an empty source empties the target)."""

    def __init__(self, options: CopyOptions) -> None:
        self.label = f"copy {options.from_} to {options.to}"
        self._source = options.from_
        self._target = options.to
        self._if_missing = options.if_missing

    def __call__(self, state: StepState) -> None:
        if not _present(state, self._target, self._if_missing):
            return
        state.message.set(self._target, state.message.get(self._source))


class DeleteOptions(StepOptions):
    """Remove a segment (every one of that name, or SEG[n]) or empty a field."""

    field: PathText = Field(description="A segment (ZPI, OBX[2]) or a field (PID-19).",
                             examples=["ZPI", "PID-19"])


@step("delete", DeleteOptions, needs=("hl7v2",),
      summary="remove HL7 v2 segments or empty a field")
class DeleteField:
    """Remove a segment (all of that name, or just SEG[n]) or clear a field."""

    def __init__(self, options: DeleteOptions) -> None:
        self.label = f"delete {options.field}"
        self._path = options.field

    def __call__(self, state: StepState) -> None:
        state.message.delete(self._path)
