"""``conduit messages``: search the message store and show one message with every stage."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from conduit.cli import main
from conduit.store import Store

F = TypeVar("F", bound=Callable[..., Any])


def _store(config_file: Path | None, data_dir: Path | None, store_url: str | None) -> Store:
    from conduit.engine.settings import load_settings

    settings = load_settings(config_file, data_dir=data_dir, store_url=store_url)
    store = Store(settings.store)
    store.migrate()
    return store


def _when(text: str | None) -> datetime | None:
    """ISO time, or an age like ``15m``/``2h``/``7d`` meaning that long ago."""
    if not text:
        return None
    from conduit.core.duration import parse_duration

    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r}: use ISO time (2026-11-23T10:00) or an age (2h)") \
            from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


_store_options = [
    click.option("--config", "config_file", type=click.Path(exists=True, path_type=Path)),
    click.option("--data-dir", type=click.Path(path_type=Path)),
    click.option("--store-url"),
]


def store_options(function: F) -> F:
    for option in reversed(_store_options):
        function = option(function)
    return function


@main.group(invoke_without_command=True)
@click.option("--channel", help="Only this channel.")
@click.option("--status", help="RECEIVED, FILTERED, QUEUED, SENT or ERROR.")
@click.option("--since", help="Received at or after (ISO time, or an age: 15m, 2h, 7d).")
@click.option("--until", help="Received before (ISO time, or an age).")
@click.option("--control-id", help="MSH-10.")
@click.option("--type", "message_type", help="Message type prefix: ADT, ADT^A01.")
@click.option("--patient", help="Patient identifier (PID-3.1).")
@click.option("--field", "fields", multiple=True, metavar="NAME=VALUE",
              help="Search field, e.g. OBR-3=ACC123, MRN=12345, PID-5.1=DOE (repeat: all "
                   "must match).")
@click.option("--limit", default=50, show_default=True)
@store_options
@click.pass_context
def messages(ctx: click.Context, channel: str | None, status: str | None, since: str | None,
             until: str | None, control_id: str | None, message_type: str | None,
             patient: str | None, fields: tuple[str, ...], limit: int, config_file: Path | None,
             data_dir: Path | None, store_url: str | None) -> None:
    """List stored messages, newest first; `conduit messages show ID` shows one in full."""
    if ctx.invoked_subcommand is not None:
        return
    pairs = []
    for entry in fields:
        name, found, value = entry.partition("=")
        if not found or not name.strip() or not value.strip():
            raise click.BadParameter(f"NAME=VALUE, not {entry!r}", param_hint="--field")
        pairs.append((name.strip(), value.strip()))
    store = _store(config_file, data_dir, store_url)
    rows = store.search(channel=channel, status=status, since=_when(since), until=_when(until),
                        control_id=control_id, message_type=message_type, patient_id=patient,
                        limit=limit, fields=pairs)
    click.echo(f"{'ID':>8}  {'RECEIVED (UTC)':19}  {'CHANNEL':20}  {'STATUS':11}  "
               f"{'TYPE':12}  {'MSH-10':20}  ERROR")
    for row in rows:
        click.echo(f"{row.id:>8}  {row.received_at:%Y-%m-%d %H:%M:%S}  {row.channel[:20]:20}  "
                   f"{row.status:11}  {(row.message_type or '-')[:12]:12}  "
                   f"{(row.control_id or '-')[:20]:20}  {(row.error or '')[:60]}")
    click.echo(f"{len(rows)} message(s)")


@messages.command()
@click.argument("message_id", type=int)
@store_options
def show(message_id: int, config_file: Path | None, data_dir: Path | None,
         store_url: str | None) -> None:
    """Show message MESSAGE_ID: raw, transformed, and per destination what was sent and answered."""
    store = _store(config_file, data_dir, store_url)
    record = store.get(message_id)
    if record is None:
        click.echo(f"no message {message_id}", err=True)
        sys.exit(1)
    click.echo(f"message {record.id}  channel {record.channel}  status {record.status}")
    click.echo(f"received {record.received_at}  updated {record.updated_at}  "
               f"from {record.source or '-'}")
    click.echo(f"type {record.message_type or '-'}  MSH-10 {record.control_id or '-'}  "
               f"patient {record.patient_id or '-'}")
    click.echo(f"correlation id {record.correlation_id or '-'}")
    if record.error:
        click.echo(f"error: {record.error}")
    _section("raw", record.raw)
    _section("transformed", record.transformed)
    for d in record.deliveries:
        label = "why" if d.status == "FILTERED" else "error"
        click.echo(f"\n== destination {d.destination}: {d.status}, {d.attempts} attempt(s)"
                   + (f", {label}: {d.error}" if d.error else ""))
        _section(f"{d.destination}: sent", d.content)
        _section(f"{d.destination}: response", d.response)
    for at, kind, detail in record.events:
        click.echo(f"event {at} {kind} {detail or ''}")


def _section(title: str, content: bytes | None) -> None:
    if not content:
        return
    text = content.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    click.echo(f"\n-- {title} --\n{text.rstrip()}")
