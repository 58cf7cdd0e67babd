"""How the CLI reads a time option: ISO 8601 (with an offset, the same instant on every store;
without, UTC) or an age (``15m``, ``2h``, ``7d``) meaning that long ago (``core.duration``), a
bad one a usage error."""

from __future__ import annotations

from datetime import datetime

import click

from conduit.core.duration import moment


def when(text: str | None) -> datetime | None:
    """The moment ``text`` names; click's usage error when it names none."""
    try:
        return moment(text)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r}: use ISO time (2026-11-23T10:00) or an age (2h)") \
            from exc
