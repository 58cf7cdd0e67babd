"""Durations as analysts write them: ``500ms``, ``1s``, ``5m``, ``2h`` (or plain seconds), and
the moments operators write in searches: an ISO time or an age (``2h`` ago)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: object) -> float:
    """Seconds from ``"1.5s"``, ``"5m"``, ``250`` or ``0.5``; ValueError on anything else."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like '500ms', '1s', '5m'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        match = _PATTERN.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2) or "s"]
    raise ValueError(f"{value!r} is not a duration: write e.g. '500ms', '1s', '5m', '2h'")


def moment(text: str | None) -> datetime | None:
    """An ISO time (with an offset, that instant; without, UTC) or an age (``15m``, ``2h``,
    ``7d``) meaning that long ago, as UTC; None for no text; ValueError on anything else."""
    if not text:
        return None
    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    parsed = datetime.fromisoformat(text)
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema({
        "anyOf": [{"type": "number", "minimum": 0},
                  {"type": "string", "pattern": r"^\d+(\.\d+)?(ms|s|m|h|d)?$"}],
        "description": "Seconds, or a number with a unit: ms, s, m, h, d.",
    }),
]
