"""Validation of a Bundle against the FHIR R4B models of ``fhir.resources`` (off the hot path).

Building the pydantic models costs ~10x building the dicts, so conversion never does it unless a
channel asks (``validate: true``) or a test checks. Problems are reported by element path and
rule only: pydantic's messages would otherwise quote the (PHI-bearing) input values.
"""

from __future__ import annotations

from typing import Any

import orjson

from conduit.fhir.convert import dumps

__all__ = ["bundle_problems"]


def bundle_problems(bundle: dict[str, Any]) -> list[str]:
    """Why ``bundle`` is not a valid R4B Bundle (``[]`` when it is)."""
    import pydantic
    from fhir.resources.R4B.bundle import Bundle  # imported late: ~0.5 s, only when validating

    data = orjson.loads(dumps(bundle))
    try:
        Bundle.model_validate(data)
    except pydantic.ValidationError as exc:
        return [_describe(data, err) for err in exc.errors(include_input=False, include_url=False)]
    return []


def _describe(data: dict[str, Any], err: Any) -> str:
    loc = list(err["loc"])
    where = ".".join(str(p) for p in loc)
    if len(loc) > 2 and loc[0] == "entry" and isinstance(loc[1], int):
        try:
            kind = data["entry"][loc[1]]["resource"]["resourceType"]
            where = f"{kind} (entry {loc[1]}): " + ".".join(str(p) for p in loc[3:])
        except (KeyError, IndexError, TypeError):
            pass
    return f"{where}: {err['msg']}"
