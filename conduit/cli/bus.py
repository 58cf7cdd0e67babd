"""``conduit bus``: RabbitMQ upkeep. ``migrate-queues`` moves the classic queues an older
version declared to quorum, the default since, keeping every message (``bus.migrate``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from conduit.cli import main


@main.group()
def bus() -> None:
    """RabbitMQ upkeep (the bus of production engines)."""


@bus.command("migrate-queues")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--bus-url", help="amqp://... (default: settings, $CONDUIT_BUS_URL).")
@click.option("--config", "config_file", type=click.Path(path_type=Path),
              help="Settings file (default: $CONDUIT_CONFIG or the nearest conduit.yaml).")
def migrate_queues_command(paths: tuple[Path, ...], bus_url: str | None,
                           config_file: Path | None) -> None:
    """Make the queues of the channels in PATHS (default: channels/) quorum, keeping their
    messages. Stop every engine first: a queue with consumers is refused. Safe to run again."""
    import pika.exceptions

    from conduit.bus.migrate import Migrated, migrate_queues
    from conduit.core.errors import ConfigError
    from conduit.engine.loader import load_channels
    from conduit.engine.settings import load_settings
    from conduit.engine.topology import queue_specs

    def report(result: Migrated) -> None:
        click.echo(f"{result.queue}: " + ("already quorum" if result.already
                                         else f"quorum now, {result.moved} message(s) kept"))

    try:
        settings = load_settings(config_file, bus_url=bus_url)
        if not settings.bus_url or not settings.bus_url.startswith("amqp"):
            raise ConfigError(["no RabbitMQ bus URL (--bus-url or $CONDUIT_BUS_URL)"])
        channels = load_channels(list(paths) or [Path("channels")])
        migrate_queues(settings.bus_url,
                       [spec for channel in channels for spec in queue_specs(channel)], report)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"conduit: {problem}", err=True)
        sys.exit(1)
    except (pika.exceptions.AMQPError, OSError) as exc:
        click.echo(f"conduit: RabbitMQ: {type(exc).__name__}: {exc} (run it again: no message "
                   "is lost, an interrupted migration resumes)", err=True)
        sys.exit(1)
