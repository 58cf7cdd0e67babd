"""Which time zone a channel's senders keep their clocks in, for times sent without an offset.

HL7 v2 says a time without an offset is the sender's local time; writing it as UTC moves every
such time by hours. The zone is, first match wins: the channel's ``timezone:`` (an IANA name),
else the engine's default (the ``timezone`` setting or ``CONDUIT_TIMEZONE``), else the host's
zone (``TZ``, else ``/etc/localtime``, read with tzlocal). A step can still say its own
(``hl7v2-to-fhir`` ``timezone:``, before the channel's). A message whose MSH-7 carries an offset
the zone does not have at that moment is read with MSH-7's offset instead: the sender said so.
"""

from __future__ import annotations

import os
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

__all__ = ["DEFAULT_ZONE_ENV", "check_zone", "default_zone", "effective_zone", "host_zone"]

DEFAULT_ZONE_ENV = "CONDUIT_TIMEZONE"


def check_zone(name: str) -> str:
    """``name`` if it is an IANA zone (``Europe/Berlin``); ValueError saying what to write."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        import difflib

        close = difflib.get_close_matches(name, sorted(available_timezones()), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else " (e.g. Europe/Berlin, UTC)"
        raise ValueError(f"unknown time zone {name!r}: use an IANA name{hint}") from None
    return name


def host_zone() -> str:
    """The IANA name of the host's zone (``TZ``, else ``/etc/localtime``); UTC when it has none,
    as the C library assumes."""
    import tzlocal

    try:
        name = tzlocal.get_localzone_name()
        ZoneInfo(name or "")
    except (ZoneInfoNotFoundError, ValueError, LookupError, OSError):
        return "UTC"
    return name or "UTC"


def default_zone(configured: str | None = None) -> str | None:
    """The engine's default zone: the setting, else ``$CONDUIT_TIMEZONE``; None when neither."""
    return configured or os.environ.get(DEFAULT_ZONE_ENV) or None


def effective_zone(channel_zone: str | None, engine_default: str | None = None
                   ) -> tuple[str, str]:
    """(zone, where it comes from) for a channel: the channel, the engine default, the host."""
    if channel_zone:
        return channel_zone, "the channel"
    default = default_zone(engine_default)
    if default:
        return default, "the engine default"
    return host_zone(), "the host"
