"""The ``json-map`` step: reshape a JSON body with JMESPath expressions.

JMESPath, not JSONata: it has a formal specification with a shared compliance suite, a mature
pure-Python implementation (``jmespath``, used by the AWS SDKs) with no dependencies, and
expressions that cannot loop or call out, so a mapping stays a mapping. JSONata is more
expressive (string functions, arithmetic), but its Python port is young; anything beyond
JMESPath is what ``template`` (Jinja2) or ``python`` steps are for.

Either one ``expression`` whose result becomes the body, or a ``mapping`` of output keys to
expressions (dots in a key make nested objects). ``to`` stores the result in a variable instead.
"""

from __future__ import annotations

from typing import Any

import jmespath
import jmespath.exceptions
import orjson
from pydantic import Field, model_validator

from conduit.core.errors import MessageError
from conduit.core.registry import step
from conduit.transforms.registry import StepOptions, StepState


class JsonMapOptions(StepOptions):
    """Reshape the JSON body with JMESPath (one expression, or a mapping of keys)."""

    expression: str | None = Field(
        None, description="A JMESPath expression; its result is the new body.",
        examples=["entry[].resource | [?resourceType=='Patient'] | [0]"])
    mapping: dict[str, str] | None = Field(
        None, description="Output key -> JMESPath expression; dots in keys nest objects. "
                          "Keys whose expression finds nothing are left out.",
        examples=[{"mrn": "identifier[?type.coding[0].code=='MR'].value | [0]",
                   "name.family": "name[0].family", "name.given": "name[0].given[0]"}])
    to: str | None = Field(
        None, description="Store the result in vars.<to> instead of replacing the body.",
        examples=["patient"])

    @model_validator(mode="after")
    def _compile(self) -> JsonMapOptions:
        if (self.expression is None) == (self.mapping is None):
            raise ValueError("give exactly one of 'expression' or 'mapping'")
        for key, expr in ({"expression": self.expression} if self.expression is not None
                          else self.mapping or {}).items():
            try:
                jmespath.compile(expr)
            except jmespath.exceptions.ParseError as exc:
                raise ValueError(f"{key}: invalid JMESPath {expr!r}: {exc.msg}") from None
        return self


@step("json-map", JsonMapOptions, needs=("json", "fhir"), produces="json",
      summary="reshape JSON with JMESPath")
class JsonMap:
    """Reshape the JSON body with JMESPath (one expression, or a mapping of keys)."""

    def __init__(self, options: JsonMapOptions) -> None:
        self.label = "json-map" + (f" -> vars.{options.to}" if options.to else "")
        self._expression = jmespath.compile(options.expression) if options.expression else None
        self._mapping = [(key.split("."), jmespath.compile(expr))
                         for key, expr in (options.mapping or {}).items()]
        self._to = options.to

    def __call__(self, state: StepState) -> None:
        data = _json_body(state)
        try:
            if self._expression is not None:
                result = self._expression.search(data)
            else:
                result = {}
                for path, expr in self._mapping:
                    value = expr.search(data)
                    if value is not None:
                        _put(result, path, value)
        except jmespath.exceptions.JMESPathError as exc:
            raise MessageError(f"json-map: {exc}") from None
        if self._to:
            state.variables[self._to] = result
        else:
            state.body = orjson.dumps(result).decode("utf-8")
            state.variables["body"] = result


def _json_body(state: StepState) -> Any:
    if state.body is None:
        raise MessageError("no JSON body: this step needs a JSON message (data_type: json or "
                           "fhir) or a step before it that produces JSON")
    try:
        return orjson.loads(state.body)
    except orjson.JSONDecodeError as exc:
        raise MessageError(f"the body is not JSON: {exc.msg} at line {exc.lineno}") from None


def _put(target: dict[str, Any], path: list[str], value: Any) -> None:
    for key in path[:-1]:
        nested = target.setdefault(key, {})
        if not isinstance(nested, dict):
            raise MessageError(f"json-map: {'.'.join(path)} needs {key!r} to be an object")
        target = nested
    target[path[-1]] = value
