"""How the CLI reads a time option: ISO 8601 (with an offset, the same instant on every store;
without, UTC) or an age (``15m``, ``2h``, ``7d``) meaning that long ago."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click


def when(text: str | None) -> datetime | None:
    """ISO time, or an age like ``15m``/``2h``/``7d`` meaning that long ago."""
    if not text:
        return None
    from conduit.core.duration import parse_duration

    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r}: use ISO time (2026-11-23T10:00) or an age (2h)") \
            from exc
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
