"""Declarative filters: ``all`` / ``any`` / ``not`` over leaf tests on field paths.

Used for a channel's ``filter:`` and each destination's ``when:``. Filters are data, never code:
YAML text is not evaluated. Regexes compile and paths are checked when the channel loads, so a
message never meets a broken rule. Evaluating a condition answers ``(passed, reason)``; the reason
says which rule decided, e.g. ``MSH-9.1 is 'ORU', expected 'ADT'``. Filtering is an outcome, not
an error.

The hot path calls :meth:`passes` (cheap); :meth:`explain` builds the sentence only when someone
will read it (a FILTERED message, or a trace).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Protocol

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    field_validator,
)

from conduit.core.reason import Reason, value
from conduit.hl7.path import PathText

_SHOWN = 40  # longest value quoted in a reason, so reasons stay short


class Fields(Protocol):
    """What a condition reads: raw field text by path, ``""`` when absent."""

    def get(self, path: str) -> str: ...


def _quote(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


def _field_value(text: str) -> str:
    """A message's value quoted in a reason: hidden from viewers (see ``core.reason``)."""
    return value(_quote(text))


def _as_text(value: Any) -> Any:
    """YAML reads ``equals: 1`` as a number; HL7 fields are text, so compare as text."""
    if isinstance(value, bool):
        return value  # let pydantic reject it: 'true' is rarely what an analyst meant
    if isinstance(value, int | float):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(_as_text)]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    TAG: ClassVar[str]

    def passes(self, msg: Fields) -> bool:
        raise NotImplementedError

    def explain(self, msg: Fields) -> Reason:
        """Which rule decided, with the field's value (a :class:`Reason`: viewers see the
        field path, not the value)."""
        raise NotImplementedError

    def evaluate(self, msg: Fields) -> tuple[bool, Reason]:
        """``(passed, reason)`` for one message."""
        return self.passes(msg), self.explain(msg)


class Equals(_Rule):
    """The field's raw text equals a value."""

    TAG: ClassVar[str] = "@equals"

    field: PathText
    equals: Text = Field(description="The exact text the field must hold.", examples=["ADT"])

    def passes(self, msg: Fields) -> bool:
        return msg.get(self.field) == self.equals

    def explain(self, msg: Fields) -> Reason:
        found = msg.get(self.field)
        if found == self.equals:
            return Reason.of(self.field, " is ", _field_value(found))
        return Reason.of(self.field, " is ", _field_value(found),
                         f", expected {_quote(self.equals)}")


class In(_Rule):
    """The field's raw text is one of several values."""

    TAG: ClassVar[str] = "@in"

    model_config = ConfigDict(populate_by_name=True)

    field: PathText
    in_: list[Text] = Field(alias="in", min_length=1, description="The allowed values.",
                            examples=[["A01", "A04", "A08"]])

    def passes(self, msg: Fields) -> bool:
        return msg.get(self.field) in self.in_

    def explain(self, msg: Fields) -> Reason:
        found = msg.get(self.field)
        if found in self.in_:
            return Reason.of(self.field, " is ", _field_value(found))
        allowed = ", ".join(_quote(v) for v in self.in_)
        return Reason.of(self.field, " is ", _field_value(found), f", expected one of {allowed}")


class Matches(_Rule):
    """The field's raw text matches a regular expression (Python syntax, searched anywhere)."""

    TAG: ClassVar[str] = "@matches"

    field: PathText
    matches: str = Field(description="A Python regular expression; anchor it with ^ and $ "
                                     "to match the whole field.", examples=["^A0[1-4]$"])
    _pattern: re.Pattern[str] = PrivateAttr()

    @field_validator("matches")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    def model_post_init(self, context: Any, /) -> None:
        self._pattern = re.compile(self.matches)

    def passes(self, msg: Fields) -> bool:
        return self._pattern.search(msg.get(self.field)) is not None

    def explain(self, msg: Fields) -> Reason:
        found = msg.get(self.field)
        if self._pattern.search(found) is not None:
            return Reason.of(self.field, " is ", _field_value(found),
                             f", matching {self.matches!r}")
        return Reason.of(self.field, " is ", _field_value(found),
                         f", expected to match {self.matches!r}")


class Exists(_Rule):
    """The field is present and not empty (``exists: true``), or absent/empty (``false``)."""

    TAG: ClassVar[str] = "@exists"

    field: PathText
    exists: bool = Field(description="true: the field must have a value; false: it must not.")

    def passes(self, msg: Fields) -> bool:
        return (msg.get(self.field) != "") is self.exists

    def explain(self, msg: Fields) -> Reason:
        present = msg.get(self.field) != ""
        state = "present" if present else "missing"
        if present is self.exists:
            return Reason(f"{self.field} is {state}")
        return Reason(f"{self.field} is {state}, "
                      f"expected {'present' if self.exists else 'missing'}")


class AllOf(_Rule):
    """Every condition in the list passes."""

    TAG: ClassVar[str] = "@all"

    all: list[Condition] = Field(min_length=1, description="Conditions that must all pass.")

    def passes(self, msg: Fields) -> bool:
        return all(c.passes(msg) for c in self.all)

    def explain(self, msg: Fields) -> Reason:
        for condition in self.all:
            if not condition.passes(msg):
                return condition.explain(msg)
        return _joined(" and ", [c.explain(msg) for c in self.all])


class AnyOf(_Rule):
    """At least one condition in the list passes."""

    TAG: ClassVar[str] = "@any"

    any: list[Condition] = Field(min_length=1, description="Conditions of which one must pass.")

    def passes(self, msg: Fields) -> bool:
        return any(c.passes(msg) for c in self.any)

    def explain(self, msg: Fields) -> Reason:
        for condition in self.any:
            if condition.passes(msg):
                return condition.explain(msg)
        return Reason.of("none passed: ", _joined("; ", [c.explain(msg) for c in self.any]))


class Not(_Rule):
    """The inner condition fails."""

    TAG: ClassVar[str] = "@not"

    model_config = ConfigDict(populate_by_name=True)

    not_: Condition = Field(alias="not", description="A condition that must not pass.")

    def passes(self, msg: Fields) -> bool:
        return not self.not_.passes(msg)

    def explain(self, msg: Fields) -> Reason:
        return Reason.of("not (", self.not_.explain(msg), ")")


def _joined(separator: str, reasons: list[Reason]) -> Reason:
    parts: list[str] = []
    for reason in reasons:
        parts.extend((separator, reason) if parts else (reason,))
    return Reason.of(*parts)


_LEAF_OPERATORS = ("equals", "in", "matches", "exists")
_GROUPS = ("all", "any", "not")


def condition_kind(value: Any) -> str | None:
    """Which rule a mapping is, from its keys; None when it is none or several (an error).

    Tags start with ``@`` so they never collide with YAML keys in error locations.
    """
    if isinstance(value, _Rule):
        return value.TAG
    if not isinstance(value, dict):
        return None
    found = [k for k in (*_GROUPS, *_LEAF_OPERATORS) if k in value]
    return "@" + found[0] if len(found) == 1 else None


Condition = Annotated[
    Annotated[AllOf, Tag("@all")]
    | Annotated[AnyOf, Tag("@any")]
    | Annotated[Not, Tag("@not")]
    | Annotated[Equals, Tag("@equals")]
    | Annotated[In, Tag("@in")]
    | Annotated[Matches, Tag("@matches")]
    | Annotated[Exists, Tag("@exists")],
    Discriminator(
        condition_kind,
        custom_error_type="condition",
        custom_error_message="a condition has exactly one of: all, any, not (groups) or "
                             "field with one of equals, in, matches, exists",
    ),
]
"""A filter: a group (``all``/``any``/``not``) or a leaf test on one field."""

for _model in (AllOf, AnyOf, Not):
    _model.model_rebuild()
