"""``conduit reprocess``: put stored messages back to work, by id or by a search.

Store first, then bus (see :mod:`conduit.store.replay`): deliveries go back to QUEUED with
a ``reprocess`` event on the message, then the envelopes are published. On RabbitMQ this command
publishes them itself, so running workers (any process) send them at once; with the embedded bus
the running engine notices the events within a second and publishes them (or, if no engine runs,
its next start does).
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from conduit.cli import main
from conduit.cli.messages import store_options
from conduit.cli.times import when
from conduit.connectors.base import DestinationConfig

if TYPE_CHECKING:
    from conduit.store import Store


@main.command()
@click.argument("ids", nargs=-1, type=int)
@click.option("--channel", help="Messages of this channel (needed unless IDS are given).")
@click.option("--status", help="Only messages with this status (RECEIVED, QUEUED, SENT, ERROR...).")
@click.option("--since", help="Received at or after (ISO time, or an age: 15m, 2h, 7d).")
@click.option("--until", help="Received before (ISO time, or an age).")
@click.option("--destination", "destinations", multiple=True,
              help="Only to this destination (repeat for several; default: all of them).")
@click.option("--dead-letters", is_flag=True,
              help="Only deliveries that were dead-lettered (status ERROR); on RabbitMQ they are "
                   "also taken out of the channel's dead-letter queue.")
@click.option("--from-raw", is_flag=True,
              help="Run the whole pipeline again from the raw message (e.g. after fixing a "
                   "transform), instead of resending what was already transformed.")
@click.option("--channels", "channel_paths", multiple=True, type=click.Path(path_type=Path),
              help="Channel files or folders, to find partitioned destinations' queues "
                   "(default: channels/ when it exists).")
@click.option("--bus-url", help="amqp://... when the engine runs on RabbitMQ (default: settings).")
@click.option("--include-not-accepted", is_flag=True,
              help="Also messages answered AE because they could not be queued (their senders "
                   "were told to resend them, so a search leaves them out by default).")
@click.option("--limit", default=10_000, show_default=True, help="At most this many messages.")
@click.option("--dry-run", is_flag=True, help="Only list what would be reprocessed.")
@store_options
def reprocess(ids: tuple[int, ...], channel: str | None, status: str | None, since: str | None,
              until: str | None, destinations: tuple[str, ...], dead_letters: bool,
              from_raw: bool, channel_paths: tuple[Path, ...], bus_url: str | None,
              include_not_accepted: bool, limit: int, dry_run: bool,
              config_file: Path | None, data_dir: Path | None, store_url: str | None) -> None:
    """Re-queue messages IDS, or those of --channel matching --status/--since/--until, to all
    or chosen destinations; each gets a 'reprocess' event."""
    from conduit.engine.settings import load_settings
    from conduit.store.replay import select_messages

    if not ids and not channel:
        raise click.UsageError("give message IDS or --channel (with --status, --since...)")
    if from_raw and (destinations or dead_letters):
        raise click.UsageError("--from-raw runs the whole pipeline: no --destination or "
                               "--dead-letters with it")
    from conduit.cli.stores import Failure, open_store
    from conduit.core.errors import UnavailableError

    settings = load_settings(config_file, data_dir=data_dir, store_url=store_url,
                             bus_url=bus_url)
    from conduit.engine.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)  # no debug lines by default
    store = open_store(config_file, data_dir, store_url)
    chosen = select_messages(store, ids=ids, channel=channel, status=status, since=when(since),
                             until=when(until), destinations=destinations,
                             dead_letters=dead_letters, limit=limit,
                             include_not_accepted=include_not_accepted)
    if not chosen:
        click.echo("no messages match")
        sys.exit(1)
    if dry_run:
        click.echo(f"would reprocess {len(chosen)} message(s): "
                   + " ".join(str(i) for i in chosen[:50]) + (" ..." if len(chosen) > 50 else ""))
        return
    paths = list(channel_paths) or ([Path("channels")] if Path("channels").is_dir() else [])
    try:
        done = asyncio.run(_reprocess(store, settings.bus_url, chosen, destinations,
                                      dead_letters, from_raw, paths))
        _note(store, done[0], channel)
    except UnavailableError as exc:  # the broker away or refusing the login: one line
        raise Failure(f"{exc}; the store recorded the reprocess of {len(chosen)} message(s) "
                      "but nothing was published: run the same command again once RabbitMQ "
                      "answers") from None
    finally:
        asyncio.run(store.close())
    messages, deliveries, missing = done
    where = ("published to RabbitMQ" if settings.bus_url
             else "the running engine picks them up within a second (else at its next start)")
    click.echo(f"reprocessing {messages} message(s), {deliveries} delivery(ies): {where}")
    if missing:
        click.echo(f"{missing} message(s) had nothing to send again", err=True)


def _note(store: Store, messages: int, channel: str | None) -> None:
    """The event log's ``messages.reprocessed`` (a failed write is said, not fatal)."""
    from conduit.store import eventlog

    try:
        eventlog.record(store.engine, "messages.reprocessed",
                        f"reprocessed {messages} message{'' if messages == 1 else 's'} with "
                        f"conduit reprocess, on the host by {getpass.getuser()}",
                        channel=channel)
    except Exception as exc:
        click.echo(f"the event log did not take it: {type(exc).__name__}", err=True)


async def _reprocess(store: object, bus_url: str | None, chosen: list[int],
                     destinations: tuple[str, ...], dead_letters: bool, from_raw: bool,
                     paths: list[Path]) -> tuple[int, int, int]:
    from conduit.bus import Envelope, dead_letter_queue
    from conduit.engine.topology import destination_queue, republish
    from conduit.store import Store
    from conduit.store.replay import Requeued, requeue

    assert isinstance(store, Store)
    detail = f"by {getpass.getuser()}" + (" (dead letter)" if dead_letters else "")
    done: list[Requeued] = []
    missing = 0
    for message_id in chosen:
        result = await requeue(store, message_id, destinations=destinations, from_raw=from_raw,
                               dead_letters=dead_letters, detail=detail)
        if result is None:
            missing += 1
        else:
            done.append(result)
    if bus_url and done:
        from conduit.bus.rabbitmq import RabbitBus, remove_dead_letters

        configs = _destination_configs(paths)
        bus = RabbitBus(bus_url, start_timeout=10)
        await bus.start()
        try:
            for item in done:
                await republish(
                    bus, item.channel,
                    {d: c for (name, d), c in configs.items() if name == item.channel},
                    [Envelope(item.message_id, item.raw)] if item.raw is not None else [],
                    [(d, Envelope(item.message_id, c)) for d, c in item.deliveries])
        finally:
            await bus.close()
        if dead_letters:
            for name in {item.channel for item in done}:
                wanted = {(item.message_id,
                           destination_queue(name, d, c, configs.get((name, d))))
                          for item in done if item.channel == name for d, c in item.deliveries}
                await asyncio.to_thread(remove_dead_letters, bus_url, dead_letter_queue(name),
                                        wanted)
    return len(done), sum(len(i.deliveries) or 1 for i in done), missing


def _destination_configs(paths: list[Path]) -> dict[tuple[str, str], DestinationConfig]:
    if not paths:
        return {}
    from conduit.core.errors import ConfigError
    from conduit.engine.loader import load_channels

    try:
        channels = load_channels(paths)
    except ConfigError as exc:
        click.echo(f"channel files not read ({len(exc.problems)} problem(s)); partitioned "
                   "destinations need them", err=True)
        return {}
    return {(c.name, d.name): d for c in channels for d in c.destinations}
