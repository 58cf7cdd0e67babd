"""The ``template`` step: render the outbound body from a Jinja2 template.

After it runs, destinations get the rendered text instead of the encoded message (a different
HL7 shape, JSON, XML...). The template is given inline (``body``) or as a file (``file``, relative
to the channel file), read and compiled when the channel loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, ValidationInfo, model_validator

from conduit.core.registry import step
from conduit.transforms.registry import StepOptions, StepState
from conduit.transforms.template import TemplateText, compile_template, render_template


class TemplateOptions(StepOptions):
    """Produce the outbound body from a Jinja2 template (inline ``body`` or a ``file``)."""

    body: TemplateText | None = Field(
        default=None,
        description="The template text. Line ends become \\r, a trailing one is kept.",
        examples=["MSH|^~\\&|CONDUIT|{{ msg['MSH-4'] }}|...\nPID|1||{{ msg['PID-3.1'] }}\n"])
    file: str | None = Field(
        default=None, description="A template file, relative to the channel file.",
        examples=["templates/adt.j2"])
    _source: str = PrivateAttr("")

    @model_validator(mode="after")
    def _read_and_compile(self, info: ValidationInfo) -> TemplateOptions:
        if (self.body is None) == (self.file is None):
            raise ValueError("give exactly one of 'body' or 'file'")
        if self.body is not None:
            self._source = self.body
            return self
        path = Path(self.file or "")
        path = path if path.is_absolute() else _base_dir(info.context) / path
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read template file {str(path)!r}: {exc.strerror}") from None
        try:
            compile_template(source)
        except ValueError as exc:
            raise ValueError(f"{self.file}: {exc}") from None
        self._source = source
        return self

    @property
    def source(self) -> str:
        """The template text, whether given inline or read from the file."""
        return self._source


def _base_dir(context: Any) -> Path:
    if isinstance(context, dict) and context.get("base_dir") is not None:
        return Path(context["base_dir"])
    return Path.cwd()


@step("template", TemplateOptions,
      summary="Jinja2 (sandboxed, HL7-safe line ends) producing the outbound body; filters for "
              "HL7/FHIR dates, escaping, code systems")
class TemplateBody:
    """Render the outbound body from a Jinja2 template."""

    def __init__(self, options: TemplateOptions) -> None:
        self.label = "template " + (options.file or "body")
        self._template = compile_template(options.source)

    def __call__(self, state: StepState) -> None:
        state.body = render_template(self._template, state.message, state.variables)
