"""One group of writes in one transaction, on a connection kept between groups; when that
fails, each write in a transaction of its own, so one failing write fails alone. Used by the
store's writer thread (``batch``) and by its writing process (``process``)."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine

from conduit.store.connect import BUSY_TIMEOUT_MS
from conduit.store.opcount import COUNTS

#: The writer thread and the writing process try for the lock this often (see ``GroupRunner``).
LOCK_POLL = 0.0002
#: Executes many parameter sets of one kind in an open transaction; one result per set, in order.
Bulk = Callable[[Connection, Sequence[Any]], Sequence[Any]]


class GroupRunner:
    """Runs groups on a connection it keeps (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None
        self._sqlite = engine.dialect.name == "sqlite"

    def run(self, group: Sequence[tuple[Any, ...]]) -> list[tuple[bool, Any]]:
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                if self._connection is None:
                    self._connection = self._connect()
                with self._connection.begin():
                    outcomes = run_grouped(self._connection, group)
                COUNTS.commits += 1
                return outcomes
            except Exception as exc:
                if locked(exc) and time.monotonic() < deadline:
                    time.sleep(LOCK_POLL)
                    continue
                self.release()
                if len(group) == 1:
                    return [self._run_one(group[0])]
                break
        return [self._run_one(entry) for entry in group]

    def _connect(self) -> Connection:
        """The group's connection. On SQLite it does not wait for the write lock itself:
        SQLite's own wait sleeps 1, 2, 5, 10 ms... between tries, so a group that met the
        full-text indexer's short transaction slept for several ms after the lock was free
        (10% of the writing process's time under load); ``run`` tries again every
        ``LOCK_POLL`` instead."""
        connection = self._engine.connect()
        if self._sqlite:
            connection.exec_driver_sql("PRAGMA busy_timeout=0")
            connection.commit()
        return connection

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.rollback()
                if self._sqlite:  # back to the pool as the pool gave it
                    connection.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                    connection.commit()
            with contextlib.suppress(Exception):
                connection.close()

    def _run_one(self, entry: tuple[Any, ...]) -> tuple[bool, Any]:
        try:
            with self._engine.begin() as connection:
                outcome = run_grouped(connection, [entry])[0]
            COUNTS.commits += 1
            return outcome
        except Exception as exc:
            return False, exc


def locked(exc: BaseException) -> bool:
    """SQLite's "database is locked", from the driver or wrapped by SQLAlchemy."""
    error = getattr(exc, "orig", None) or exc
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


def run_grouped(connection: Connection, group: Sequence[tuple[Any, ...]]
                 ) -> list[tuple[bool, Any]]:
    """Call each kind of bulk once, kinds in order of first arrival; results in entry order."""
    results: list[tuple[bool, Any]] = [(True, None)] * len(group)
    for bulk, indexes in kinds(group).items():
        place(results, indexes, bulk(connection, [group[i][1] for i in indexes]))
    return results


def kinds(group: Sequence[tuple[Any, ...]]) -> dict[Bulk, list[int]]:
    """The group's entry indexes by kind of bulk, kinds in order of first arrival."""
    by_kind: dict[Bulk, list[int]] = {}
    for index, entry in enumerate(group):
        by_kind.setdefault(entry[0], []).append(index)
    return by_kind


def place(results: list[tuple[bool, Any]], indexes: list[int], values: Sequence[Any]) -> None:
    for index, value in zip(indexes, values, strict=True):
        results[index] = (True, value)
