"""``conduit users``: dashboard users (kept in the store) and API tokens."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from conduit.cli import main
from conduit.cli.messages import _store, store_options


def _users(config_file: Path | None, data_dir: Path | None, store_url: str | None, *,
           create: bool = False) -> Any:
    from conduit.ops.auth import Users

    store = _store(config_file, data_dir, store_url, create=create)
    click.get_current_context().call_on_close(store.engine.dispose)  # no pooled connection left
    return Users(store.engine)


def _password(from_stdin: bool) -> str:
    """The password from standard input, or asked twice on a terminal; without a terminal
    (a script, a container's init step) one line pointing at ``--password-stdin``."""
    from conduit.cli.stores import Failure

    if from_stdin:
        value = sys.stdin.readline().rstrip("\n")
        if not value:
            raise Failure("no password on standard input")
        return value
    if not sys.stdin.isatty():
        raise Failure("no terminal to ask for the password: pipe it in with --password-stdin "
                      "(e.g. conduit users add NAME --password-stdin < password-file)")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@main.group()
def users() -> None:
    """Dashboard and API users: add, list, change, remove; API tokens."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["viewer", "operator", "admin"]), default="viewer",
              show_default=True, help="viewer: counts and states; operator: message bodies, "
                                      "reprocess, start/stop; admin: users and deployment.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@store_options
def add(name: str, role: str, password_stdin: bool, config_file: Path | None,
        data_dir: Path | None, store_url: str | None) -> None:
    """Create user NAME (asks for the password)."""
    from conduit.ops.auth import UserError

    password = _password(password_stdin)
    try:
        _users(config_file, data_dir, store_url, create=True).add(name, password, role)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"user {name} added as {role}")


@users.command("list")
@store_options
def list_users(config_file: Path | None, data_dir: Path | None, store_url: str | None) -> None:
    """List users and their roles."""
    for user in _users(config_file, data_dir, store_url).list():
        flags = [flag for flag, on in (("totp", user["totp"]), ("sso", user["sso"]),
                                       ("disabled", user["disabled"])) if on]
        click.echo(f"{user['name']:30} {user['role']:9}"
                   + (f"  ({', '.join(flags)})" if flags else ""))


@users.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@store_options
def passwd(name: str, password_stdin: bool, config_file: Path | None, data_dir: Path | None,
           store_url: str | None) -> None:
    """Set NAME's password (ends their sessions)."""
    from conduit.ops.auth import UserError

    try:
        _users(config_file, data_dir, store_url).update(name, password=_password(password_stdin))
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"password of {name} changed")


@users.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(["viewer", "operator", "admin"]))
@store_options
def role(name: str, role: str, config_file: Path | None, data_dir: Path | None,
         store_url: str | None) -> None:
    """Give NAME another role."""
    from conduit.ops.auth import UserError

    try:
        _users(config_file, data_dir, store_url).update(name, role=role)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{name} is now {role}")


@users.command("remove")
@click.argument("name")
@store_options
def remove(name: str, config_file: Path | None, data_dir: Path | None,
           store_url: str | None) -> None:
    """Remove NAME and every session and token of theirs."""
    from conduit.ops.auth import UserError

    try:
        _users(config_file, data_dir, store_url).remove(name)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"user {name} removed")


@users.command("mfa")
@click.argument("name")
@click.option("--reset", is_flag=True, help="Remove NAME's second factor (a lost phone).")
@click.option("--replace", is_flag=True, help="Give NAME a new secret in place of the old one.")
@store_options
def mfa(name: str, reset: bool, replace: bool, config_file: Path | None, data_dir: Path | None,
        store_url: str | None) -> None:
    """Enrol NAME for a TOTP second factor: prints the otpauth URI (and the secret) to put in
    an authenticator app; from then on the dashboard asks for a code after the password.
    Ends NAME's sessions; API tokens are not affected."""
    from conduit.ops.auth import UserError
    from conduit.ops.totp import provisioning_uri

    found = _users(config_file, data_dir, store_url)
    try:
        if reset:
            found.reset_totp(name)
            click.echo(f"second factor of {name} removed")
            return
        secret = found.enrol_totp(name, replace=replace)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"otpauth URI (as a QR code, or typed in): {provisioning_uri(secret, name)}")
    click.echo(f"secret: {secret}")
    click.echo("Give it to the user over a channel you trust; it is not shown again.")


@users.command("token")
@click.argument("name")
@click.option("--label", help="What the token is for.")
@click.option("--days", type=float, help="Expire after this many days (default: never).")
@store_options
def token(name: str, label: str | None, days: float | None, config_file: Path | None,
          data_dir: Path | None, store_url: str | None) -> None:
    """Print a new API token for NAME (send it as `Authorization: Bearer TOKEN`)."""
    from conduit.ops.auth import UserError

    try:
        value = _users(config_file, data_dir, store_url).create_api_token(name, label, days)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(value)
