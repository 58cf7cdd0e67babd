"""``conduit messages``: search the message store and show one message with every stage.

The listing shows reasons and errors as viewers see them (field paths, no values) unless asked
for ``--phi``; ``show`` prints one message whole, bodies included."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from conduit.cli import main
from conduit.cli.times import when
from conduit.store import Store

F = TypeVar("F", bound=Callable[..., Any])


def _store(config_file: Path | None, data_dir: Path | None, store_url: str | None, *,
           create: bool = False) -> Store:
    """The store ``conduit run`` would open here (see :mod:`conduit.cli.stores`)."""
    from conduit.cli.stores import open_store

    return open_store(config_file, data_dir, store_url, create=create)


_store_options = [
    click.option("--config", "config_file", type=click.Path(exists=True, path_type=Path),
                 help="Settings file (else $CONDUIT_CONFIG, else the nearest conduit.yaml), "
                      "to find the store."),
    click.option("--data-dir", type=click.Path(path_type=Path),
                 help="The engine's data folder (else $CONDUIT_DATA_DIR)."),
    click.option("--store-url", help="The store's URL (else $CONDUIT_STORE_URL)."),
]


def store_options(function: F) -> F:
    for option in reversed(_store_options):
        function = option(function)
    return function


_remote_options = [
    click.option("--url", envvar="CONDUIT_URL",
                 help="Ask a running engine's API instead of reading the store "
                      "(default: $CONDUIT_URL)."),
    click.option("--token", envvar="CONDUIT_TOKEN",
                 help="API token with --url (default: $CONDUIT_TOKEN)."),
    click.option("--json", "as_json", is_flag=True, help="Print JSON."),
]


def remote_or_store(function: F) -> F:
    for option in reversed(_remote_options):
        function = option(function)
    return store_options(function)


@main.group(invoke_without_command=True)
@click.option("--channel", help="Only this channel.")
@click.option("--status", help="RECEIVED, FILTERED, QUEUED, SENT or ERROR.")
@click.option("--since", help="Received at or after (ISO time, or an age: 15m, 2h, 7d).")
@click.option("--until", help="Received before (ISO time, or an age).")
@click.option("--control-id", help="MSH-10.")
@click.option("--type", "message_type", help="Message type prefix: ADT, ADT^A01.")
@click.option("--patient", help="Patient identifier (PID-3.1).")
@click.option("--q", "text", help="Full text: messages containing every word.")
@click.option("--field", "fields", multiple=True, metavar="NAME=VALUE",
              help="Search field, e.g. OBR-3=ACC123, MRN=12345, PID-5.1=DOE (repeat: all "
                   "must match).")
@click.option("--limit", default=50, show_default=True)
@click.option("--phi", is_flag=True,
              help="Show patient ids and the values reasons quote (else field paths only).")
@remote_or_store
@click.pass_context
def messages(ctx: click.Context, channel: str | None, status: str | None, since: str | None,
             until: str | None, control_id: str | None, message_type: str | None,
             patient: str | None, text: str | None, fields: tuple[str, ...], limit: int,
             phi: bool, url: str | None,
             token: str | None, as_json: bool, config_file: Path | None,
             data_dir: Path | None, store_url: str | None) -> None:
    """List messages, newest first, from the store `conduit run` uses here, or with --url from
    a running engine's API; `conduit messages show ID` shows one in full."""
    if ctx.invoked_subcommand is not None:
        return
    pairs = []
    for entry in fields:
        name, equals, value = entry.partition("=")
        if not equals or not name.strip() or not value.strip():
            raise click.BadParameter(f"NAME=VALUE, not {entry!r}", param_hint="--field")
        pairs.append((name.strip(), value.strip()))
    if url:
        from conduit.cli.remote import Client

        answer = Client(url, token, config_file).get(
            "/messages", channel=channel, status=status, since=since, until=until,
            type=message_type, control_id=control_id, patient=patient, q=text, limit=limit,
            field=[f"{name}:{value}" for name, value in pairs] or None)
        rows: list[dict[str, Any]] = answer["items"]
    else:
        from conduit.ops.operations import summary

        store = _store(config_file, data_dir, store_url)
        records = store.search(channel=channel, status=status, since=when(since),
                               until=when(until), control_id=control_id,
                               message_type=message_type, patient_id=patient, text=text,
                               limit=limit, fields=pairs)
        rows = [summary(record, phi=phi) for record in records]
    if as_json:
        from conduit.cli.remote import print_json

        print_json(rows)
        return
    click.echo(f"{'ID':>8}  {'RECEIVED (UTC)':19}  {'CHANNEL':20}  {'STATUS':11}  "
               f"{'TYPE':12}  {'MSH-10':20}  " + ("PATIENT           " if phi else "") + "ERROR")
    for row in rows:
        received = datetime.fromisoformat(row["received_at"])
        patient_id = f"{(row.get('patient_id') or '-')[:16]:16}  " if phi else ""
        click.echo(f"{row['id']:>8}  {received:%Y-%m-%d %H:%M:%S}  {row['channel'][:20]:20}  "
                   f"{row['status']:11}  {(row['message_type'] or '-')[:12]:12}  "
                   f"{(row['control_id'] or '-')[:20]:20}  {patient_id}{(row['error'] or '')[:60]}")
    click.echo(f"{len(rows)} message(s)")


@messages.command()
@click.argument("message_id", type=int)
@remote_or_store
def show(message_id: int, url: str | None, token: str | None, as_json: bool,
         config_file: Path | None, data_dir: Path | None, store_url: str | None) -> None:
    """Show message MESSAGE_ID: raw, transformed, and per destination what was sent and answered
    (with --url: from a running engine's API, bodies for operators)."""
    from conduit.cli.remote import Client, print_json
    from conduit.ops.operations import detail as as_detail

    if url:
        shown: dict[str, Any] = Client(url, token, config_file).get(f"/messages/{message_id}")
    else:
        store = _store(config_file, data_dir, store_url)
        record = store.get(message_id)
        if record is None:
            click.echo(f"no message {message_id}", err=True)
            sys.exit(1)
        shown = as_detail(record, bodies=True)
    if as_json:
        print_json(shown)
        return
    click.echo(f"message {shown['id']}  channel {shown['channel']}  status {shown['status']}")
    click.echo(f"received {shown['received_at']}  updated {shown['updated_at']}  "
               f"from {shown['source'] or '-'}")
    click.echo(f"type {shown['message_type'] or '-'}  MSH-10 {shown['control_id'] or '-'}  "
               f"patient {shown['patient_id'] or '-'}")
    click.echo(f"correlation id {shown['correlation_id'] or '-'}")
    if shown["error"]:
        click.echo(f"error: {shown['error']}")
    if "raw" not in shown:
        click.echo("(bodies need the operator role)")
    _section("raw", shown.get("raw"))
    _section("transformed", shown.get("transformed"))
    for d in shown["deliveries"]:
        label = "why" if d["status"] == "FILTERED" else "error"
        click.echo(f"\n== destination {d['destination']}: {d['status']}, {d['attempts']} "
                   "attempt(s)" + (f", {label}: {d['error']}" if d["error"] else ""))
        _section(f"{d['destination']}: sent", d.get("content"))
        _section(f"{d['destination']}: response", d.get("response"))
    for event in shown["events"]:
        click.echo(f"event {event['at']} {event['kind']} {event['detail'] or ''}")


def _section(title: str, content: str | None) -> None:
    if not content:
        return
    text = content.replace("\r\n", "\n").replace("\r", "\n")
    click.echo(f"\n-- {title} --\n{text.rstrip()}")
