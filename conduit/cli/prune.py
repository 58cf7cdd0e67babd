"""``conduit prune``: delete old messages by age, channel and status, and give the disk back."""

from __future__ import annotations

from pathlib import Path

import click

from conduit.cli import main
from conduit.cli.messages import _store, store_options


@main.command()
@click.option("--older-than", help="Age: 30d, 12h. Without it, the settings' retention rules.")
@click.option("--channel", help="Only this channel (default: every channel).")
@click.option("--status", "statuses", multiple=True,
              help="Statuses to prune (repeatable; default SENT, FILTERED, TRANSFORMED).")
@click.option("--include-unfinished", is_flag=True,
              help="Allow QUEUED, RECEIVED and ERROR in --status (never pruned otherwise).")
@click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
@click.option("--vacuum-full", is_flag=True,
              help="Then shrink the store files (SQLite: VACUUM, enabling incremental vacuum "
                   "from then on; PostgreSQL: VACUUM FULL, which locks the tables).")
@click.option("--batch", type=int, help="Messages deleted per transaction.")
@store_options
def prune(older_than: str | None, channel: str | None, statuses: tuple[str, ...],
          include_unfinished: bool, dry_run: bool, vacuum_full: bool, batch: int | None,
          config_file: Path | None, data_dir: Path | None, store_url: str | None) -> None:
    """Delete messages older than an age (per channel and status), then vacuum."""
    from conduit.cli.stores import settings_for
    from conduit.store.retention import (
        RetentionError,
        RetentionRule,
        RetentionSettings,
        check_rule,
        prune_once,
    )

    settings = settings_for(config_file, data_dir, store_url).retention
    try:
        if older_than:
            rule = RetentionRule.model_validate({
                "channel": channel, "older_than": older_than,
                "include_unfinished": include_unfinished,
                **({"statuses": list(statuses)} if statuses else {})})
            check_rule(rule)
            settings = RetentionSettings(interval=settings.interval, batch=settings.batch,
                                         rules=[rule])
        elif not settings.rules:
            raise click.UsageError("give --older-than, or retention rules in the settings")
        if batch:
            settings = settings.model_copy(update={"batch": batch})
    except (RetentionError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    store = _store(config_file, data_dir, store_url)
    try:
        result = prune_once(store.engine, settings, dry_run=dry_run, vacuum_full=vacuum_full)
    except RetentionError as exc:
        raise click.UsageError(str(exc)) from exc
    verb = "would delete" if dry_run else "deleted"
    for name, count in sorted(result.deleted.items()):
        click.echo(f"{name}: {verb} {count} message(s)")
    click.echo(f"{verb} {result.total} message(s) in {result.seconds}s"
               + (f"; {result.vacuumed}" if result.vacuumed else ""))
