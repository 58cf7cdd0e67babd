"""``conduit test CHANNEL.yaml --against-store``: preview an edited channel over stored traffic.

The store is found the way ``conduit messages`` finds it (``--config``/``$CONDUIT_CONFIG``,
``--data-dir``/``$CONDUIT_DATA_DIR``, ``--store-url``/``$CONDUIT_STORE_URL``) and only read:
no migration, and a missing SQLite file is an error rather than a new empty store.
"""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from conduit.cli.times import when


def against_store_preview(channel_path: Path, since: str | None, last: int | None,
                          as_json: bool, show_all: bool, config_file: Path | None,
                          data_dir: Path | None, store_url: str | None) -> int:
    """Print the preview; the exit status: 0, or 1 when the channel or the store is unusable."""
    from sqlalchemy.exc import SQLAlchemyError

    from conduit.core.errors import ConfigError
    from conduit.engine.loader import load_channel
    from conduit.engine.pipeline import Pipeline
    from conduit.engine.preview import preview, preview_text
    from conduit.engine.settings import load_settings
    from conduit.store import Store

    try:
        channel = load_channel(channel_path)
        settings = load_settings(config_file, data_dir=data_dir, store_url=store_url)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        return 1
    started = when(since)
    url = settings.store
    if url.startswith("sqlite:///") and ":memory:" not in url \
            and not Path(url.removeprefix("sqlite:///")).is_file():
        click.echo(f"no store at {url.removeprefix('sqlite:///')}: name it with --data-dir, "
                   f"--store-url or $CONDUIT_DATA_DIR", err=True)
        return 1
    store = Store(url)
    try:
        report = preview(Pipeline(channel, default_zone=settings.timezone), store,
                         since=started, last=last)
    except SQLAlchemyError as exc:
        click.echo(f"cannot read the store: {type(exc).__name__}: {exc}", err=True)
        return 1
    finally:
        store.engine.dispose()
    if as_json:
        click.echo(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(preview_text(report, show_unchanged=show_all))
    return 0
