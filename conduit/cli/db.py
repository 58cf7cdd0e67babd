"""``conduit db init``: create the store's database and tables (and the first admin), so a new
deployment's first step says plainly what is wrong when it cannot."""

from __future__ import annotations

from pathlib import Path

import click

from conduit.cli import main
from conduit.cli.messages import store_options
from conduit.cli.stores import Failure, settings_for


@main.group()
def db() -> None:
    """The store's database."""


@db.command()
@click.option("--admin", "admin_name", metavar="NAME",
              help="Also create this admin user, unless a user of that name exists.")
@click.option("--admin-password-file", envvar="CONDUIT_ADMIN_PASSWORD_FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="The admin's password, first line of this file (default: "
                   "$CONDUIT_ADMIN_PASSWORD_FILE, e.g. a container secret).")
@store_options
def init(admin_name: str | None, admin_password_file: Path | None, config_file: Path | None,
         data_dir: Path | None, store_url: str | None) -> None:
    """Create the database (PostgreSQL: when missing) and bring its tables to the newest schema;
    safe to run again. With --admin, create the first admin from a password file."""
    from conduit.core.errors import StartupError
    from conduit.store import Store
    from conduit.store.connect import create_database, safe_url

    url = settings_for(config_file, data_dir, store_url).store
    password = None
    if admin_name:
        if admin_password_file is None:
            raise Failure("--admin needs --admin-password-file (or CONDUIT_ADMIN_PASSWORD_FILE)")
        try:
            password = admin_password_file.read_text(encoding="utf-8").splitlines()[0]
        except (OSError, UnicodeDecodeError, IndexError) as exc:
            raise Failure(f"admin password file {admin_password_file}: "
                          f"{getattr(exc, 'strerror', None) or 'empty or unreadable'}") from None
    try:
        if create_database(url):
            click.echo(f"conduit: created database {safe_url(url)}")
        store = Store(url)
        store.migrate()
    except StartupError as exc:
        raise Failure(str(exc)) from None
    click.echo(f"conduit: store {safe_url(url)} ready")
    if admin_name and password is not None:
        from conduit.ops.auth import UserError, Users

        users = Users(store.engine)
        if any(user["name"] == admin_name for user in users.list()):
            click.echo(f"conduit: user {admin_name} exists already (unchanged)")
        else:
            try:
                users.add(admin_name, password, "admin")
            except UserError as exc:
                raise Failure(str(exc)) from None
            click.echo(f"conduit: user {admin_name} added as admin")
    store.engine.dispose()
