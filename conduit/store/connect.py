"""Connections to the store: SQLite's PRAGMAs, PostgreSQL's per-connection options, and the
names each process's connections carry (``pg_stat_activity``, ``ps``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from conduit.core import sql
from conduit.core.private import private_file

#: Connection and process names: the engine's, its store-writing process's, its indexer's.
STORE_NAME, WRITER_NAME, INDEXER_NAME = "conduit", "conduit-writer", "conduit-indexer"
#: What the store's SQLite connections wait for a lock, restored on the loop's connection
#: before it goes back to the pool (see ``batch``).
BUSY_TIMEOUT_MS = 10000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # pruning gives the disk back page by page (PRAGMA incremental_vacuum); takes effect on a
    # new database (an existing one needs one VACUUM: `conduit prune --vacuum-full`)
    cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # an ACK means durable: fsync the WAL each commit
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def _owner_only(url: str) -> None:
    """A SQLite store file is created owner-only before SQLite opens it: its WAL and SHM files
    take its mode (see ``core.private``); those of an existing store are narrowed too."""
    path = url.split("///", 1)[-1] if "///" in url else ""
    if not path or path == ":memory:" or path.startswith("file:") or "?" in path:
        return
    store = Path(path)
    private_file(store)
    for companion in (store.with_name(store.name + "-wal"), store.with_name(store.name + "-shm")):
        if companion.exists():
            private_file(companion)


#: Every PostgreSQL connection of the store plans each statement for its parameters: psycopg
#: prepares a statement on its 5th run, and PostgreSQL may then keep a generic plan made while
#: the tables were small (``WHERE id = ANY($1)`` stayed a sequential scan for good).
PG_OPTIONS = "-c plan_cache_mode=force_custom_plan"
#: The hot path's writes (``batch``'s connection on the loop) find every row by its key. A new
#: store has no statistics until autovacuum analyzes it (a minute or more), and without them the
#: planner took a sequential scan of ``deliveries`` for each group's status read: the server's
#: CPU per message grew with the table (0.17 ms at 5,000 messages, 0.28 ms at 15,000). Index
#: scans keep it flat.
PG_WRITER_OPTIONS = PG_OPTIONS + " -c enable_seqscan=off"


def make_engine(url: str, *, name: str = STORE_NAME) -> Engine:
    """An engine tuned for the store: WAL + fsync on SQLite, a small pool on PostgreSQL (its
    connections named ``name`` in ``pg_stat_activity``)."""
    if url.startswith("sqlite"):
        _owner_only(url)
        # A pool keeps connections open: closing the last SQLite connection checkpoints the WAL,
        # which cost more than the writes themselves when done per transaction.
        return sql.make_engine(url, name=name, pool_size=4, max_overflow=8,
                               on_sqlite_connect=_sqlite_pragmas)
    return sql.make_engine(url, name=name, pool_size=4, max_overflow=4, pg_options=PG_OPTIONS)


def safe_url(url: str) -> str:
    """``url`` with its password hidden, for messages and logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def unreachable(url: str, exc: BaseException) -> str:
    """One line saying why the store at ``url`` cannot be opened (the driver's first line),
    with what to do about a database that does not exist."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    reason = " ".join(reason.split())
    if "does not exist" in reason and "database" in reason:
        reason += " (create it: conduit db init)"
    return f"store {safe_url(url)}: {reason}"


def create_database(url: str) -> bool:
    """Create the PostgreSQL database ``url`` names when it does not exist (True if created),
    connecting to the server's ``postgres`` database to do it; SQLite files make themselves.
    A server that cannot be reached, or a user who may not create databases, is a
    :class:`StartupError` of one line."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from conduit.core.errors import StartupError

    if not url.startswith("postgresql"):
        return False
    target = make_url(url)
    probe = make_engine(url)
    try:
        with probe.connect():
            return False
    except OperationalError as exc:
        if "does not exist" not in str(exc.orig) or not target.database:
            raise StartupError(unreachable(url, exc)) from None
    finally:
        probe.dispose()
    admin = sql.make_engine(target.set(database="postgres").render_as_string(
        hide_password=False), name=STORE_NAME).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            name = target.database.replace('"', '""')
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except (OperationalError, ProgrammingError) as exc:
        raise StartupError(unreachable(url, exc).replace(" (create it: conduit db init)", "")
                           + f" (and it could not be created: {_first_line(exc)})") from None
    finally:
        admin.dispose()
    return True


def _first_line(exc: BaseException) -> str:
    return " ".join(str(getattr(exc, "orig", None) or exc).strip().splitlines()[0].split())
