"""``conduit validate``: check channel files without deploying them (for editors and CI)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from conduit.cli import main


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Check channel files (or folders of them): every problem as file:line: key: what.

    Each valid channel is listed with the time zone its senders' times are read in (the
    channel's ``timezone``, else the engine default, else the host's) and where it comes from."""
    from conduit.core.errors import ConfigError
    from conduit.core.timezone import effective_zone
    from conduit.engine.loader import load_channels

    try:
        channels = load_channels(paths)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem)
        click.echo(f"{len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''}",
                   err=True)
        sys.exit(1)
    default = _engine_default_zone()
    for channel in channels:
        zone, source = effective_zone(channel.timezone, default)
        click.echo(f"ok: {channel.path or channel.name} (timezone {zone} from {source})")
    count = len(channels)
    click.echo(f"ok: {count} channel{'s' if count != 1 else ''}")


def _engine_default_zone() -> str | None:
    """The settings' ``timezone`` ($CONDUIT_CONFIG, $CONDUIT_TIMEZONE), as ``conduit run``
    would use it; a settings file that does not load is ``conduit run``'s to report."""
    from conduit.core.errors import ConfigError
    from conduit.engine.settings import load_settings

    try:
        return load_settings().timezone
    except ConfigError:
        return None
