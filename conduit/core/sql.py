"""The one way Conduit opens a SQL database: the store, the database connector and the bench.

``postgresql://`` means psycopg 3 (the driver the project ships); every PostgreSQL connection
names itself (``application_name``) so ``pg_stat_activity`` shows who holds it; SQLite
connections may be used from the store's writer thread (``check_same_thread`` off).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event

__all__ = ["make_engine"]


def make_engine(url: str, *, name: str = "conduit", pool_size: int = 2, max_overflow: int = 2,
                pg_options: str | None = None,
                on_sqlite_connect: Callable[[Any, Any], None] | None = None) -> Engine:
    """A SQLAlchemy engine for ``url``; a SQLite file's folder is created when missing.

    ``pg_options`` is PostgreSQL's ``-c key=value`` options string for each connection;
    ``on_sqlite_connect(dbapi_connection, record)`` runs on each new SQLite connection (PRAGMAs).
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:" and not path.startswith("file:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow,
                               connect_args={"check_same_thread": False})
        if on_sqlite_connect is not None:
            event.listen(engine, "connect", on_sqlite_connect)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql"):
        connect_args["application_name"] = name
        if pg_options:
            connect_args["options"] = pg_options
    return create_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True,
                         connect_args=connect_args)
