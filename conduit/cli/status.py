"""``conduit status``: a running engine's health, version, role and channel states."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from conduit.cli import main
from conduit.cli.remote import Client, print_json, remote_options


@main.command()
@remote_options
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
def status(url: str | None, token: str | None, config_file: Path | None, as_json: bool) -> None:
    """Ask a running engine how it is: store and bus reachable, channels; exit 1 if degraded."""
    client = Client(url, token, config_file)
    health = client.get("/health")
    if as_json:
        print_json(health)
    else:
        checks = ", ".join(f"{name} {'ok' if good else 'DOWN'}"
                           for name, good in health["checks"].items())
        click.echo(f"{client.url}: {health['status']} ({checks}); conduit {health['version']}, "
                   f"role {health['role']}, up {health['uptime_seconds']:.0f}s")
        for name, state in health["channels"].items():
            click.echo(f"  {name:40} {state}")
        classic = health.get("classic_queues") or []
        if classic:
            click.echo(f"  {len(classic)} RabbitMQ queue(s) still classic (quorum is the "
                       f"default; stop the engines and run `conduit bus migrate-queues`): "
                       f"{', '.join(classic)}")
    sys.exit(0 if health["status"] == "ok" else 1)
