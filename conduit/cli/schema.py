"""``conduit schema``: write the JSON Schema of channel files (for editor completion), or the
README's connector and step tables; both are generated from the component registry."""

from __future__ import annotations

from pathlib import Path

import click

from conduit.cli import main


@main.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output.")
@click.option("--readme", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Instead of the schema, rewrite the connector and step tables of this "
                   "README (between its <!-- registry:... --> markers).")
def schema(output: Path | None, readme: Path | None) -> None:
    """Print the JSON Schema of channel files (or write it with -o).

    The copy editors use is conduit/engine/schema/channel.schema.json; refresh it with
    `conduit schema -o conduit/engine/schema/channel.schema.json` after changing a model or
    adding a component, and the README's tables with `conduit schema --readme README.md`.
    """
    from conduit.engine.schema import schema_text, with_readme_tables

    if readme is not None:
        before = readme.read_text(encoding="utf-8")
        try:
            after = with_readme_tables(before)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        if after != before:
            readme.write_text(after, encoding="utf-8")
        click.echo(f"{readme}: tables {'rewritten' if after != before else 'already current'}",
                   err=True)
        return
    text = schema_text()
    if output is None:
        click.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}", err=True)
