"""``conduit schema``: write the JSON Schema of channel files (for editor completion)."""

from __future__ import annotations

from pathlib import Path

import click

from conduit.cli import main


@main.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output.")
def schema(output: Path | None) -> None:
    """Print the JSON Schema of channel files (or write it with -o).

    The copy editors use is conduit/engine/schema/channel.schema.json; refresh it with
    `conduit schema -o conduit/engine/schema/channel.schema.json` after changing a model.
    """
    from conduit.engine.schema import schema_text

    text = schema_text()
    if output is None:
        click.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}", err=True)
