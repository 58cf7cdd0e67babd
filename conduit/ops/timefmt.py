"""Times on the dashboard: ``<time datetime="ISO with offset">`` holding the UTC time to the
second; ``static/localtime.js`` rewrites it in the browser's own zone (without script the UTC
text stays, labelled as such). The store keeps naive times as UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from markupsafe import Markup, escape


def time_tag(value: datetime | None) -> Markup | str:
    if value is None:
        return "–"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    utc = value.astimezone(UTC).replace(microsecond=0)
    return Markup('<time datetime="{}">{} UTC</time>').format(
        escape(utc.isoformat()), utc.strftime("%Y-%m-%d %H:%M:%S"))
