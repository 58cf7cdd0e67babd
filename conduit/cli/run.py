"""``conduit run``: deploy channels and serve until stopped."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from conduit.cli import main
from conduit.core.errors import ConfigError, StartupError


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--config", "config_file", type=click.Path(exists=True, path_type=Path),
              help="Settings file (default: $CONDUIT_CONFIG, else embedded defaults).")
@click.option("--data-dir", type=click.Path(path_type=Path),
              help="Data directory (default: $CONDUIT_DATA_DIR or ./data).")
@click.option("--store-url", help="Store URL (default: SQLite under the data directory).")
@click.option("--bus-url", help="amqp://... for RabbitMQ (default: in-process bus).")
@click.option("--role", type=click.Choice(["all", "listeners", "workers"]), default=None,
              help="Run source listeners, pipeline and destination workers, or all.")
@click.option("--workers", type=click.IntRange(1, 256), default=None,
              help="Sends at once per destination (default 8; 8x as many messages in hand "
                   "per stage); for more CPU run several processes on RabbitMQ.")
@click.option("--watch", is_flag=True,
              help="Redeploy a channel when its file changes (queued messages are kept).")
def run(paths: tuple[Path, ...], config_file: Path | None, data_dir: Path | None,
        store_url: str | None, bus_url: str | None, role: str | None,
        workers: int | None, watch: bool) -> None:
    """Deploy the channels in PATHS (files or folders; default: channels/) and serve them."""
    from conduit.engine.engine import Engine, run_async
    from conduit.engine.loader import load_channels
    from conduit.engine.logs import configure_logging
    from conduit.engine.settings import load_settings
    from conduit.ops.attach import attach

    try:
        settings = load_settings(config_file, data_dir=data_dir, store_url=store_url,
                                 bus_url=bus_url, role=role, workers=workers)
        channels = load_channels(list(paths) or [Path("channels")])
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        sys.exit(1)
    configure_logging(settings.log_level, settings.log_format)
    engine = Engine(settings, channels)
    operations = attach(engine)

    async def serve() -> None:
        import asyncio

        ready = asyncio.Event()
        task = asyncio.create_task(engine.serve(ready))
        await asyncio.wait([task, asyncio.create_task(ready.wait())],
                           return_when=asyncio.FIRST_COMPLETED)
        if ready.is_set():
            click.echo(f"conduit: store {_safe_url(engine.store.url)}, "
                       f"bus {_safe_url(settings.bus_url or 'in-process')}")
            for name, runtime in engine.runtimes.items():
                click.echo(f"conduit: channel {name} listening on {runtime.describe()}")
            for name in sorted(n for n, c in engine.control.channels.items() if not c.enabled):
                click.echo(f"conduit: channel {name} disabled (enabled: false), not deployed")
            if operations.dashboard is not None:
                click.echo(f"conduit: dashboard {operations.dashboard.url} "
                           "(first user: conduit users add NAME --role admin)")
            elif settings.role == "workers" and settings.dashboard.enabled is None:
                click.echo("conduit: no dashboard in a workers process (the listeners serve "
                           "it; CONDUIT_DASHBOARD_ENABLED=true and another port to serve one)")
            if watch:
                engine.control.watch(list(paths) or [Path("channels")])
                click.echo("conduit: watching channel files for changes")
            click.echo("conduit: ready (Ctrl-C to stop)", err=False)
        await task

    try:
        run_async(serve())
    except StartupError as exc:  # a port in use: one line naming what to change, no traceback
        click.echo(f"conduit: {exc}", err=True)
        sys.exit(1)


def _safe_url(url: str) -> str:
    """A URL with its password hidden."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
    return url
