"""``conduit events``: the event log (issue 19) from the store, newest first, in local time;
the dashboard's ``/events`` page on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import click

from conduit.cli import main
from conduit.cli.messages import _store, store_options
from conduit.cli.times import when


@main.command()
@click.option("--kind", help="A kind (channel.paused) or its family (channel, login, breaker...).")
@click.option("--channel", help="Only this channel's events.")
@click.option("--level", type=click.Choice(["info", "warning", "error"]), help="Only this level.")
@click.option("--user", help="Only what this user did (or tried: a failed login).")
@click.option("--since", help="At or after (ISO time, or an age: 15m, 2h, 7d).")
@click.option("--until", help="Before (ISO time, or an age).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON, one event a line.")
@store_options
def events(kind: str | None, channel: str | None, level: str | None, user: str | None,
           since: str | None, until: str | None, limit: int, as_json: bool,
           config_file: Path | None, data_dir: Path | None, store_url: str | None) -> None:
    """What happened to the engine: deploys, channel states, breakers, alerts, logins, users,
    reprocessing (no PHI)."""
    from conduit.store import eventlog

    store = _store(config_file, data_dir, store_url)
    try:
        found = eventlog.listed(store.engine, kind=kind, channel=channel, level=level,
                                user=user, since=when(since), until=when(until), limit=limit)
    finally:
        store.engine.dispose()
    for event in found:
        if as_json:
            click.echo(json.dumps(event.jsonable()))
            continue
        at = event.at.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
        click.echo(f"{at}  {event.level:<7}  {event.kind:<20}  {event.channel or '-':<16}  "
                   f"{event.user or '-':<12}  {event.text}")
