"""Declarative filters: ``all`` / ``any`` / ``not`` over leaf tests on message fields.

Used for a channel's ``filter:`` and each destination's ``when:``. A leaf test reads one value:
an HL7 v2 field (``field: PID-3.1``), a JSON or FHIR value (``json:``, a JMESPath expression)
or an XML value (``xpath:``, XPath 1.0), and tests it with ``equals``, ``in``, ``matches`` or
``exists``: the same operators on every kind. Filters are data, never code: YAML text is not
evaluated. Regexes, JMESPath and XPath expressions compile and paths are checked when the
channel loads, so a message never meets a broken rule; which kind of message a condition reads
(:func:`leaves`) is checked against the channel's data type there too. Evaluating a condition
answers ``(passed, reason)``; the reason says which rule decided, e.g. ``MSH-9.1 is 'ORU',
expected 'ADT'``. Filtering is an outcome, not an error.

The hot path calls :meth:`passes` (cheap); :meth:`explain` builds the sentence only when someone
will read it (a FILTERED message, or a trace).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Annotated, Any, ClassVar, Literal, Protocol

import jmespath
import orjson
from lxml import etree
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    field_validator,
    model_validator,
)

from conduit.core.reason import Reason, value
from conduit.hl7.pathtext import PathText

_SHOWN = 40  # longest value quoted in a reason, so reasons stay short

Reads = Literal["hl7v2", "json", "xml"]
"""What a leaf test reads: an HL7 v2 field, a JSON value (JSON and FHIR) or an XML value."""

_READ_KEYS: dict[str, Reads] = {"field": "hl7v2", "json": "json", "xpath": "xml"}


class Fields(Protocol):
    """What an HL7 v2 condition reads: raw field text by path, ``""`` when absent."""

    def get(self, path: str) -> str: ...


Subject = Fields | Any
"""What a condition is evaluated on: the parsed HL7 v2 message (:class:`Fields`), a JSON value
(dict, list...) or an XML body (an element, or a view with an ``element``)."""


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
        return _number(value)
    return value


def _number(value: float) -> str:
    """A number as JSON writes it: ``72.0`` and ``72`` are the same JSON number, ``'72'``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def json_text(value: Any) -> str:
    """A JMESPath result as the text a test compares: ``""`` for null and empty lists or
    objects, ``true``/``false``, numbers as JSON writes them, other lists and objects as
    compact JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        return value
    if not value:
        return ""
    return orjson.dumps(value).decode("utf-8")


def xpath_text(value: Any) -> str:
    """An XPath result as text: the first node of a node-set (an element's text content, an
    attribute's value), ``""`` for an empty one; numbers without a needless ``.0``;
    ``true``/``false``."""
    if isinstance(value, list):
        if not value:
            return ""
        value = value[0]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, str):
        return str(value)
    itertext = getattr(value, "itertext", None)
    return "".join(itertext()) if itertext is not None else str(value)


Text = Annotated[str, BeforeValidator(_as_text)]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    TAG: ClassVar[str]

    def passes(self, msg: Subject) -> bool:
        raise NotImplementedError

    def explain(self, msg: Subject) -> Reason:
        """Which rule decided, with the value read (a :class:`Reason`: viewers see what was
        read, not the value)."""
        raise NotImplementedError

    def evaluate(self, msg: Subject) -> tuple[bool, Reason]:
        """``(passed, reason)`` for one message."""
        return self.passes(msg), self.explain(msg)


class _Leaf(_Rule):
    """A test on one value, read from exactly one of ``field``, ``json`` or ``xpath``."""

    model_config = ConfigDict(populate_by_name=True)

    field: PathText | None = Field(
        None, description="An HL7 v2 field path (channels whose data_type is hl7v2): its raw "
                          "text, '' when absent.", examples=["MSH-9.1", "PID-3[2].1"])
    json_: str | None = Field(
        None, alias="json",
        description="A JMESPath expression (data_type json or fhir), read from the body: null "
                    "and empty lists are '', numbers and booleans as JSON writes them.",
        examples=["resourceType", "code.coding[?system=='http://loinc.org'].code | [0]"])
    namespaces: dict[str, str] = Field(
        default_factory=dict, description="Prefixes the xpath expression uses.",
        examples=[{"o": "urn:example:orders"}])
    xpath: str | None = Field(
        None, description="An XPath 1.0 expression (data_type xml), read from the body: the "
                          "text of the first node it selects, '' when none, or its string, "
                          "number or boolean.",
        examples=["/o:LabOrder/o:Patient/o:MRN", "count(//Test)"])
    _read: Callable[[Any], str] = PrivateAttr()

    @field_validator("json_")
    @classmethod
    def _json_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                jmespath.compile(value)
            except jmespath.exceptions.JMESPathError as exc:
                reason = str(exc).replace("\n", " ")
                raise ValueError(f"not a valid JMESPath expression: {reason}") from None
        return value

    @model_validator(mode="after")
    def _reads_one_thing(self) -> _Leaf:
        given = [key for key in _READ_KEYS if getattr(self, _attr(key)) is not None]
        if len(given) != 1:
            found = f" (found: {', '.join(given)})" if given else ""
            raise ValueError("a test reads exactly one of: field (an HL7 v2 path), json "
                             f"(JMESPath), xpath (XPath){found}")
        if self.namespaces and self.xpath is None:
            raise ValueError("'namespaces' goes with 'xpath' only")
        if self.xpath is not None:
            _compile_xpath(self.xpath, self.namespaces)
        return self

    def model_post_init(self, context: Any, /) -> None:
        if self.field is not None:
            return  # read directly by value()
        if self.json_ is not None:
            expression = jmespath.compile(self.json_)
            self._read = lambda body: json_text(expression.search(body))
        elif self.xpath is not None:
            xpath = _compile_xpath(self.xpath, self.namespaces)
            self._read = lambda body: xpath_text(xpath(getattr(body, "element", body)))

    def value(self, msg: Subject) -> str:
        """The text this test compares. An HL7 v2 field is read directly: the hot path, and a
        private attribute of a pydantic model costs a lookup through ``__getattr__``."""
        field = self.field
        if field is not None:
            return msg.get(field)
        return self._read(msg)

    @property
    def reads(self) -> Reads:
        """The kind of message this test reads."""
        return "hl7v2" if self.field is not None else "json" if self.json_ is not None else "xml"

    @property
    def label(self) -> str:
        """The field path or expression, as reasons name it."""
        return self.field or self.json_ or self.xpath or ""


def _attr(key: str) -> str:
    return "json_" if key == "json" else key


def _compile_xpath(expression: str, namespaces: dict[str, str]) -> etree.XPath:
    """Compiled, and tried once on an empty element so an undeclared prefix or a wrong call
    fails at load, not on a message."""
    try:
        compiled = etree.XPath(expression, namespaces=namespaces or None)
        compiled(etree.Element("x"))
    except (etree.XPathError, TypeError, ValueError) as exc:
        raise ValueError(f"not a valid XPath expression: {exc}") from None
    return compiled


class Equals(_Leaf):
    """The value's text equals a value."""

    TAG: ClassVar[str] = "@equals"

    equals: Text = Field(description="The exact text the field must hold.", examples=["ADT"])

    def passes(self, msg: Subject) -> bool:
        return self.value(msg) == self.equals

    def explain(self, msg: Subject) -> Reason:
        found = self.value(msg)
        if found == self.equals:
            return Reason.of(self.label, " is ", _field_value(found))
        return Reason.of(self.label, " is ", _field_value(found),
                         f", expected {_quote(self.equals)}")


class In(_Leaf):
    """The value's text is one of several values."""

    TAG: ClassVar[str] = "@in"

    in_: list[Text] = Field(alias="in", min_length=1, description="The allowed values.",
                            examples=[["A01", "A04", "A08"]])

    def passes(self, msg: Subject) -> bool:
        return self.value(msg) in self.in_

    def explain(self, msg: Subject) -> Reason:
        found = self.value(msg)
        if found in self.in_:
            return Reason.of(self.label, " is ", _field_value(found))
        allowed = ", ".join(_quote(v) for v in self.in_)
        return Reason.of(self.label, " is ", _field_value(found), f", expected one of {allowed}")


class Matches(_Leaf):
    """The value's text matches a regular expression (Python syntax, searched anywhere)."""

    TAG: ClassVar[str] = "@matches"

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
        super().model_post_init(context)
        self._pattern = re.compile(self.matches)

    def passes(self, msg: Subject) -> bool:
        return self._pattern.search(self.value(msg)) is not None

    def explain(self, msg: Subject) -> Reason:
        found = self.value(msg)
        if self._pattern.search(found) is not None:
            return Reason.of(self.label, " is ", _field_value(found),
                             f", matching {self.matches!r}")
        return Reason.of(self.label, " is ", _field_value(found),
                         f", expected to match {self.matches!r}")


class Exists(_Leaf):
    """The value is present and not empty (``exists: true``), or absent/empty (``false``)."""

    TAG: ClassVar[str] = "@exists"

    exists: bool = Field(description="true: the field must have a value; false: it must not.")

    def passes(self, msg: Subject) -> bool:
        return (self.value(msg) != "") is self.exists

    def explain(self, msg: Subject) -> Reason:
        present = self.value(msg) != ""
        state = "present" if present else "missing"
        if present is self.exists:
            return Reason(f"{self.label} is {state}")
        return Reason(f"{self.label} is {state}, "
                      f"expected {'present' if self.exists else 'missing'}")


class AllOf(_Rule):
    """Every condition in the list passes."""

    TAG: ClassVar[str] = "@all"

    all: list[Condition] = Field(min_length=1, description="Conditions that must all pass.")

    def passes(self, msg: Subject) -> bool:
        return all(c.passes(msg) for c in self.all)

    def explain(self, msg: Subject) -> Reason:
        for condition in self.all:
            if not condition.passes(msg):
                return condition.explain(msg)
        return _joined(" and ", [c.explain(msg) for c in self.all])


class AnyOf(_Rule):
    """At least one condition in the list passes."""

    TAG: ClassVar[str] = "@any"

    any: list[Condition] = Field(min_length=1, description="Conditions of which one must pass.")

    def passes(self, msg: Subject) -> bool:
        return any(c.passes(msg) for c in self.any)

    def explain(self, msg: Subject) -> Reason:
        for condition in self.any:
            if condition.passes(msg):
                return condition.explain(msg)
        return Reason.of("none passed: ", _joined("; ", [c.explain(msg) for c in self.any]))


class Not(_Rule):
    """The inner condition fails."""

    TAG: ClassVar[str] = "@not"

    model_config = ConfigDict(populate_by_name=True)

    not_: Condition = Field(alias="not", description="A condition that must not pass.")

    def passes(self, msg: Subject) -> bool:
        return not self.not_.passes(msg)

    def explain(self, msg: Subject) -> Reason:
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
                             "field, json or xpath with one of equals, in, matches, exists",
    ),
]
"""A filter: a group (``all``/``any``/``not``) or a leaf test on one value."""


def leaves(condition: _Rule) -> Iterator[tuple[tuple[str | int, ...], Reads]]:
    """Every leaf test of a condition: its key path from the condition (as in the YAML, e.g.
    ``("all", 1, "json")``) and what it reads, for the channel's data type check."""
    if isinstance(condition, _Leaf):
        key = next(k for k in _READ_KEYS if getattr(condition, _attr(k)) is not None)
        yield (key,), condition.reads
    elif isinstance(condition, AllOf | AnyOf):
        group = "all" if isinstance(condition, AllOf) else "any"
        for i, inner in enumerate(condition.all if isinstance(condition, AllOf)
                                  else condition.any):
            for loc, reads in leaves(inner):
                yield (group, i, *loc), reads
    elif isinstance(condition, Not):
        for loc, reads in leaves(condition.not_):
            yield ("not", *loc), reads

for _model in (AllOf, AnyOf, Not):
    _model.model_rebuild()
