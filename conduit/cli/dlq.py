"""``conduit dlq``: a running engine's dead letters (deliveries that failed for good), and
replaying them to their destination."""

from __future__ import annotations

from pathlib import Path

import click

from conduit.cli import main
from conduit.cli.remote import Client, print_json, remote_options, sub_client


@main.group(invoke_without_command=True)
@remote_options
@click.option("--channel", help="Only this channel.")
@click.option("--destination", help="Only this destination.")
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
@click.pass_context
def dlq(ctx: click.Context, url: str | None, token: str | None, config_file: Path | None,
        channel: str | None, destination: str | None, limit: int, as_json: bool) -> None:
    """Dead letters, newest first, with each channel's dead-letter queue depth."""
    ctx.obj = (url, token, config_file)
    if ctx.invoked_subcommand is not None:
        return
    answer = Client(url, token, config_file).get("/deadletters", channel=channel,
                                                 destination=destination, limit=limit)
    if as_json:
        print_json(answer)
        return
    click.echo(f"{'ID':>8}  {'CHANNEL':24}  {'DESTINATION':16}  {'ATTEMPTS':>8}  ERROR")
    for item in answer["items"]:
        click.echo(f"{item['message_id']:>8}  {item['channel'][:24]:24}  "
                   f"{item['destination'][:16]:16}  {item['attempts']:>8}  "
                   f"{(item['error'] or '')[:70]}")
    click.echo(f"{len(answer['items'])} dead letter(s)")


@dlq.command()
@click.argument("channel")
@click.argument("destination")
@click.option("--id", "ids", type=int, multiple=True, help="Only this message (repeatable).")
@click.option("--limit", default=1000, show_default=True, help="At most this many.")
@remote_options
@click.pass_context
def replay(ctx: click.Context, channel: str, destination: str, ids: tuple[int, ...],
           limit: int, url: str | None, token: str | None, config_file: Path | None) -> None:
    """Send CHANNEL's dead letters for DESTINATION again (what was sent before)."""
    answer = sub_client(ctx, url, token, config_file).post(
        "/deadletters/replay", {"channel": channel, "destination": destination,
                                "ids": list(ids) or None, "limit": limit})
    click.echo(f"replayed {answer['replayed']} message(s)")
    for failed in answer["failed"]:
        click.echo(f"  {failed['id']}: {failed['error']}", err=True)
