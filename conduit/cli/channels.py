"""``conduit channels``: list a running engine's channels and start, stop, pause, resume, deploy
or undeploy one (through its management API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from conduit.cli import main
from conduit.cli.remote import Client, print_json, remote_options, sub_client
from conduit.cli.stores import Failure


@main.group(invoke_without_command=True)
@remote_options
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
@click.pass_context
def channels(ctx: click.Context, url: str | None, token: str | None, config_file: Path | None,
             as_json: bool) -> None:
    """A running engine's channels: state, source, counts, queue depths (or a sub-command)."""
    ctx.obj = (url, token, config_file)
    if ctx.invoked_subcommand is not None:
        return
    listed = Client(url, token, config_file).get("/channels")
    if as_json:
        print_json(listed)
        return
    click.echo(f"{'CHANNEL':32}  {'STATE':10}  {'RECEIVED':>8}  {'SENT':>8}  {'ERROR':>6}  "
               f"{'QUEUED':>6}  SOURCE")
    for item in listed:
        counts = item["counts"]
        click.echo(f"{item['name'][:32]:32}  {item['state']:10}  {counts['received']:>8}  "
                   f"{counts['sent']:>8}  {counts['errored']:>6}  {counts['queued']:>6}  "
                   f"{item['source'] or '-'}" + (f"  ({item['error']})" if item["error"] else ""))
    click.echo(f"{len(listed)} channel(s)")


def _action(verb: str, doc: str) -> None:
    @channels.command(verb, help=doc)
    @click.argument("name")
    @remote_options
    @click.pass_context
    def act(ctx: click.Context, name: str, url: str | None, token: str | None,
            config_file: Path | None) -> None:
        answer: dict[str, Any] = sub_client(ctx, url, token, config_file).post(
            f"/channels/{name}/{verb}")
        click.echo(f"{answer['name']}: {answer['state']}")


for _verb, _doc in (("start", "Open NAME's source and run its workers."),
                    ("stop", "Close NAME's source and hold its workers (queued messages wait)."),
                    ("pause", "Close NAME's source; its queues keep draining."),
                    ("resume", "Start NAME again after a pause or stop."),
                    ("undeploy", "Remove NAME from the engine (its queued messages wait)."),
                    ("redeploy", "Reload NAME from its file and deploy it again.")):
    _action(_verb, _doc)


@channels.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@remote_options
@click.pass_context
def deploy(ctx: click.Context, file: Path, url: str | None, token: str | None,
           config_file: Path | None) -> None:
    """Deploy the channel in FILE (its YAML is sent; the engine keeps a copy in its data
    directory); a channel of the same name is replaced, its queued messages kept."""
    try:
        content = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Failure(f"{file}: {exc}") from None
    client = sub_client(ctx, url, token, config_file)
    answer = client.post("/channels", {"path": file.name, "content": content})
    click.echo(f"{answer['name']}: deployed, {answer['state']}")
