"""Values made ready for hand-built JSON answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def json_ready(value: Any) -> Any:
    """Datetimes as ISO text, for hand-built JSON."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value
