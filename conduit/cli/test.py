"""``conduit test``: run a channel on sample messages, or run channel tests, sending nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from conduit.cli import main
from conduit.cli.messages import store_options
from conduit.cli.preview import against_store_preview


@main.command(name="test")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--against-store", is_flag=True,
              help="Preview CHANNEL.yaml over the stored messages of the deployed channel of "
                   "the same name: what would change.")
@click.option("--since", help="With --against-store: messages received at or after (ISO time, "
                              "or an age: 15m, 24h, 7d).")
@click.option("--last", type=click.IntRange(min=1),
              help="With --against-store: the N newest messages (default 100 without --since).")
@click.option("--json", "as_json", is_flag=True, help="With --against-store: JSON for machines.")
@click.option("--all", "show_all", is_flag=True,
              help="With --against-store: show unchanged messages in full too.")
@store_options
def test_command(paths: tuple[Path, ...], against_store: bool, since: str | None,
                 last: int | None, as_json: bool, show_all: bool, config_file: Path | None,
                 data_dir: Path | None, store_url: str | None) -> None:
    """Show what a channel does to messages, or run channel tests.

    \b
    conduit test CHANNEL.yaml MESSAGE.hl7...   each stage of each message: raw, the filter
                                               and why, after every step, what each
                                               destination would get
    conduit test channels/                     every *.test.yaml below the folder
    conduit test CHANNEL.yaml | X.test.yaml    that channel's tests
    conduit test CHANNEL.yaml --against-store [--since 24h | --last N]
                                               the edited channel over the stored messages
                                               of the deployed one: per message filtered or
                                               passed, a diff of the transformed content,
                                               the routes; a summary line last

    Nothing is sent and nothing is stored. Exits 1 when a test fails.
    """
    from conduit.engine.channeltest import TEST_SUFFIX

    if against_store:
        if len(paths) != 1:
            raise click.UsageError("--against-store takes one channel file")
        sys.exit(against_store_preview(paths[0], since, last, as_json, show_all,
                                       config_file, data_dir, store_url))
    if since or last or as_json or show_all:
        raise click.UsageError("--since, --last, --json and --all go with --against-store")
    channel, messages = paths[0], paths[1:]
    is_channel = channel.suffix in (".yaml", ".yml") and not channel.name.endswith(TEST_SUFFIX)
    if messages and is_channel:
        sys.exit(_trace(channel, messages))
    sys.exit(_run_tests(paths))


def _trace(channel_path: Path, messages: tuple[Path, ...]) -> int:
    from conduit.core.errors import ConfigError
    from conduit.engine.channeltest import DestinationPaths, trace_text
    from conduit.engine.loader import load_channel
    from conduit.engine.pipeline import Pipeline

    try:
        channel = load_channel(channel_path)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        return 1
    pipeline, paths = Pipeline(channel), DestinationPaths(channel)
    for path in messages:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            click.echo(f"{path}: cannot read: {exc.strerror}", err=True)
            return 1
        click.echo(trace_text(str(path), pipeline.process(raw, trace=True), paths))
    return 0


def _run_tests(paths: tuple[Path, ...]) -> int:
    from conduit.engine.channeltest import format_report, run_tests

    report = run_tests(paths)
    click.echo(format_report(report))
    return 0 if report.passed else 1
