"""``conduit test``: run a channel on sample messages, or run channel tests, sending nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from conduit.cli import main


@main.command(name="test")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def test_command(paths: tuple[Path, ...]) -> None:
    """Show what a channel does to messages, or run channel tests.

    \b
    conduit test CHANNEL.yaml MESSAGE.hl7...   each stage of each message: raw, the filter
                                               and why, after every step, what each
                                               destination would get
    conduit test channels/                     every *.test.yaml below the folder
    conduit test CHANNEL.yaml | X.test.yaml    that channel's tests

    Nothing is sent and nothing is stored. Exits 1 when a test fails.
    """
    from conduit.engine.channeltest import TEST_SUFFIX

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
