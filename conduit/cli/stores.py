"""How the CLI opens the message store: the settings ``conduit run`` would use (``--config``,
``$CONDUIT_CONFIG``, the nearest ``conduit.yaml``, ``$CONDUIT_DATA_DIR``), the store they name,
said on standard error; a command that only reads never creates a store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from conduit.engine.settings import Settings
    from conduit.store import Store


class Failure(click.ClickException):
    """One line on standard error, ``conduit: ...``, exit 1: no traceback, no usage text."""

    def show(self, file: Any = None) -> None:
        click.echo(f"conduit: {self.format_message()}", err=True)


def settings_for(config_file: Path | None, data_dir: Path | None = None,
                 store_url: str | None = None) -> Settings:
    """The settings ``conduit run`` would use here, or a :class:`Failure`."""
    from conduit.core.errors import ConfigError
    from conduit.engine.settings import load_settings

    try:
        return load_settings(config_file, data_dir=data_dir, store_url=store_url)
    except ConfigError as exc:
        raise Failure("; ".join(exc.problems)) from None


def _where_it_looked(config_file: Path | None) -> str:
    import os

    from conduit.engine.settings import settings_source

    path, found = settings_source(config_file)
    if path is not None:
        return f"settings {path}" + (" (found upward)" if found else "")
    unset = [name for name in ("CONDUIT_CONFIG", "CONDUIT_DATA_DIR") if not os.environ.get(name)]
    return (f"no conduit.yaml in {Path.cwd()} or above"
            + (f", {' and '.join(unset)} unset" if unset else ""))


def open_store(config_file: Path | None, data_dir: Path | None, store_url: str | None, *,
               create: bool = False) -> Store:
    """The store the settings name, brought to the newest schema. Reading (``create`` False)
    never makes one: a SQLite file or PostgreSQL tables that are not there are a
    :class:`Failure` naming where it looked."""
    from conduit.core.errors import StartupError
    from conduit.engine.settings import settings_source
    from conduit.store import Store
    from conduit.store.connect import safe_url

    settings = settings_for(config_file, data_dir, store_url)
    url = settings.store
    path, _ = settings_source(config_file)
    if not create and url.startswith("sqlite") and ":memory:" not in url:
        file = Path(url.split("///", 1)[-1])
        if not file.is_file():
            raise Failure(f"no store at {file.resolve()} ({_where_it_looked(config_file)}); run "
                          "where `conduit run` runs, or give --config, --data-dir or "
                          "--store-url (or set CONDUIT_DATA_DIR)")
    store = Store(url)
    try:
        if not create and not store.has_schema():
            raise Failure(f"store {safe_url(url)} has no Conduit tables yet: run "
                          "`conduit db init`, or point at the right store")
        store.migrate()
    except StartupError as exc:
        store.engine.dispose()
        raise Failure(str(exc)) from None
    click.echo(f"conduit: store {safe_url(url)}" + (f" (settings {path})" if path else ""),
               err=True)
    return store
