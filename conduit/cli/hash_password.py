"""``conduit hash-password``: an argon2 hash for a listener user's ``password_hash``."""

from __future__ import annotations

import click

from conduit.cli import main


@main.command(name="hash-password")
@click.password_option(prompt="Password", help="Read from the terminal if not given.")
def hash_password(password: str) -> None:
    """Print the argon2id hash of a password, for `auth: {type: basic, users: [{username: ...,
    password_hash: ...}]}` on an HTTP, FHIR or SOAP source (the hash is safe in a channel file)."""
    from conduit.connectors.listener_auth import hash_password as make

    click.echo(make(password))
