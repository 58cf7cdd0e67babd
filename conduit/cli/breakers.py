"""``conduit breakers``: each destination's circuit breaker in a running engine, and closing
one so deliveries are tried again at once."""

from __future__ import annotations

from pathlib import Path

import click

from conduit.cli import main
from conduit.cli.remote import Client, print_json, remote_options, sub_client


@main.group(invoke_without_command=True)
@remote_options
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
@click.pass_context
def breakers(ctx: click.Context, url: str | None, token: str | None, config_file: Path | None,
             as_json: bool) -> None:
    """Breaker state per destination: closed, open, half-open (none: no breaker)."""
    ctx.obj = (url, token, config_file)
    if ctx.invoked_subcommand is not None:
        return
    listed = Client(url, token, config_file).get("/breakers")
    if as_json:
        print_json(listed)
        return
    for item in listed:
        click.echo(f"{item['channel'][:32]:32}  {item['destination'][:24]:24}  {item['state']}")


@breakers.command()
@click.argument("channel")
@click.argument("destination")
@remote_options
@click.pass_context
def reset(ctx: click.Context, channel: str, destination: str, url: str | None,
          token: str | None, config_file: Path | None) -> None:
    """Close CHANNEL's breaker for DESTINATION."""
    client = sub_client(ctx, url, token, config_file)
    answer = client.post(f"/breakers/{channel}/{destination}/reset")
    click.echo(f"{answer['channel']}/{answer['destination']}: {answer['state']}")
