"""Rendering destination templates (URLs, bodies, headers, SQL parameters) for one message.

Every template sees: ``msg`` (the HL7 v2 message, when the content is one), ``body`` (the JSON
content parsed, when it is JSON), ``content`` (the content as text), ``id``, ``channel`` and
``destination``. A template that cannot render is a :class:`PermanentError`: no retry can fix it.
"""

from __future__ import annotations

from typing import Any

import jinja2

from conduit.core.errors import HL7ParseError, MessageError, PermanentError
from conduit.core.payload import parse_json
from conduit.core.protocols import Outbound
from conduit.core.reason import Reason, value
from conduit.hl7.message import Message


class RenderContext:
    """The names templates see for one outbound message (parsed lazily, once)."""

    __slots__ = ("_body", "_message", "_parsed", "out", "text")

    def __init__(self, out: Outbound) -> None:
        self.out = out
        self.text = out.content.decode("utf-8", errors="replace")
        self._parsed = False
        self._message: Message | None = None
        self._body: Any = None

    def _parse(self) -> None:
        if self._parsed:
            return
        self._parsed = True
        head = self.text.lstrip("\ufeff \t\r\n")[:3]
        if head == "MSH":
            try:
                self._message = Message.parse(self.out.content)
            except HL7ParseError:
                self._message = None
        elif head[:1] in ("{", "["):
            try:
                self._body = parse_json(self.out.content)
            except MessageError:
                self._body = None

    @property
    def message(self) -> Message | None:
        self._parse()
        return self._message

    @property
    def body(self) -> Any:
        self._parse()
        return self._body

    def render(self, template: jinja2.Template, what: str, **extra: Any) -> str:
        from conduit.transforms.template import render_template

        try:
            return render_template(template, self.message, self.out.variables, body=self.body,
                                   content=self.text, id=self.out.message_id,
                                   channel=self.out.channel, destination=self.out.destination,
                                   **extra)
        except Exception as exc:
            raise PermanentError(Reason.of(f"{what} template failed: {type(exc).__name__}: ",
                                           value(exc))) from exc
