"""``conduit validate``: check channel files without deploying them (for editors and CI)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from conduit.cli import main


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Check channel files (or folders of them): every problem as file:line: key: what."""
    from conduit.core.errors import ConfigError
    from conduit.engine.loader import load_channels

    try:
        channels = load_channels(paths)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem)
        click.echo(f"{len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''}",
                   err=True)
        sys.exit(1)
    count = len(channels)
    click.echo(f"ok: {count} channel{'s' if count != 1 else ''}")
