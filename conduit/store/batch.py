"""Group commits: many concurrent writers, one transaction, one statement per kind of write.

A commit costs far more than a row (SQLite: 15,000 single-row commits/s against 35,000 rows/s in
groups of 100), and building a SQL statement per row costs more than executing it. So each caller
submits a *bulk* operation with its parameters and awaits its own result; what arrives while a
transaction runs is committed together in the next one, each kind of operation executed once for
all its parameters (``executemany`` of a prebuilt statement). Every sender still hears back only
once its own row is durable. One failing operation does not sink its neighbours: the group is
replayed one operation per transaction to isolate it.

The writer thread keeps one connection for its groups instead of taking one from the pool for
each (a checkout, and on PostgreSQL its ``pre_ping`` round trip, cost more than a small group's
rows); a group that fails gives it back, and the replay takes fresh ones from the pool.

Where a group runs:

- SQLite in the engine (``Store(writing_process=True)``): a group made only of step writes
  (``writes``: the hot path's) goes to the writing process (``process``), where it takes neither
  the event loop's time nor its GIL.
- SQLite otherwise (and the engine's other groups): the statements run on the event loop and
  only the commit (the fsync) goes to the writer thread (``GroupRunner``).
- PostgreSQL: see the last paragraph.

On SQLite without the writing process a group's statements run on the event loop and only the
commit goes to the writer thread. The thread had to win the GIL back from the busy loop after
every SQLite step, which made a group several times slower than its work (bench: 1,150 -> 1,400
msg/s, CPU per message down a sixth). Inline statements never wait for a lock (the loop's
connection has no busy timeout): a group that meets another writer (``conduit prune``, the
full-text indexer) tries again on the loop a few times (``LOCKED_TRIES``), then is run by the
thread instead, which waits as long as it takes.

On PostgreSQL a group made only of step writes (``writes``: the hot path's) runs on the event
loop over psycopg's asyncio connection, commit included: no thread hands the GIL back and forth
on every round trip. Any other group, and a group that fails there, goes to the thread (which
isolates a failing write). Two groups at once on two connections measured slower: a message's two
deliveries often land in both, and the second waits for the first's row locks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Engine

from conduit.store.connect import BUSY_TIMEOUT_MS, PG_WRITER_OPTIONS, WRITER_NAME
from conduit.store.groups import Bulk, GroupRunner, kinds, locked, place, run_grouped
from conduit.store.opcount import COUNTS
from conduit.store.process import WritingProcess
from conduit.store.writes import StepWrite

T = TypeVar("T")
#: SQLite: a group that finds the write lock taken (the indexing process, ``conduit prune``)
#: tries again on the loop this many times, this many seconds apart, before the thread's way
#: (a new connection that waits for the lock). Bench at 1,000 msg/s: ACK p99 21-23 -> 11-15 ms.
LOCKED_TRIES = 20
LOCKED_WAIT = 0.001
Entry = tuple[Bulk, Any, "asyncio.Future[Any]"]


def _each(connection: Connection, operations: Sequence[Any]) -> list[Any]:
    """The bulk form of plain callables: run them one after another."""
    return [operation(connection) for operation in operations]


class BatchWriter:
    """Runs store operations in groups, each group in one transaction (see the module
    docstring for where)."""

    def __init__(self, engine: Engine, max_batch: int = 1000, *,
                 process_url: str | None = None) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._pending: list[Entry] = []
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._task: asyncio.Task[None] | None = None
        self._runner = GroupRunner(engine)  # used by the writer thread only
        #: SQLite, in the engine: step writes in a process of their own (``process``).
        self._process = WritingProcess(process_url) if process_url else None
        #: SQLite: statements on the loop, commit in the thread (see the module docstring).
        self._inline = engine.dialect.name == "sqlite"
        self._loop_connection: Connection | None = None
        #: PostgreSQL: step writes on the loop (see the module docstring).
        self._async = engine.dialect.name == "postgresql"
        self._async_connection: Any = None  # psycopg.AsyncConnection, used on the loop only

    async def start(self) -> None:
        """Start the writing process now rather than at the first write (if there is one)."""
        if self._process is not None:
            await self._process.start()

    async def run(self, operation: Callable[[Connection], T]) -> T:
        """Execute ``operation(connection)`` in the next group commit; return once committed."""
        return cast(T, await self.submit(_each, operation))

    async def submit(self, bulk: Bulk, params: Any) -> Any:
        """Add ``params`` to the next group's call of ``bulk``; its result once committed."""
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._task = loop.create_task(self._loop(), name="store-writer")
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((bulk, params, future))
        self._wake.set()
        return await future

    async def close(self) -> None:
        if self._task is not None:
            while self._pending:
                await asyncio.sleep(0.01)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._release_async_connection()
        if self._process is not None:
            await self._process.close()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._runner.release)
        await loop.run_in_executor(self._executor, self._release_loop_connection)
        self._executor.shutdown(wait=True)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                group = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                steps = all(isinstance(bulk, StepWrite) for bulk, _, _ in group)
                if self._process is not None and steps:
                    outcomes = await self._execute_remote(group)
                elif self._inline:
                    outcomes = await self._execute_inline(group)
                elif self._async and steps:
                    outcomes = await self._execute_async(group)
                else:
                    outcomes = await loop.run_in_executor(self._executor, self._execute, group)
                _settle(group, outcomes)

    def _execute(self, group: list[Entry]) -> list[tuple[bool, Any]]:
        """In the writer thread."""
        return self._runner.run(group)

    async def _execute_remote(self, group: list[Entry]) -> list[tuple[bool, Any]]:
        """In the writing process (``process``); a process that is gone fails the group."""
        assert self._process is not None
        try:
            return await self._process.execute(
                [(cast(StepWrite, bulk).__name__, params) for bulk, params, _ in group])
        except ConnectionError as exc:
            return [(False, exc)] * len(group)

    async def _execute_inline(self, group: list[Entry]) -> list[tuple[bool, Any]]:
        """The group's statements here on the loop, its commit in the writer thread; the
        thread's way (``_execute``) when that fails, e.g. another writer holds the lock."""
        loop = asyncio.get_running_loop()
        try:
            if self._loop_connection is None:
                self._loop_connection = self._engine.connect()
                self._loop_connection.exec_driver_sql("PRAGMA busy_timeout=0")
                self._loop_connection.commit()
            for attempt in range(LOCKED_TRIES):
                transaction = self._loop_connection.begin()
                try:
                    outcomes = run_grouped(self._loop_connection, group)
                except BaseException as exc:
                    transaction.rollback()
                    if attempt + 1 < LOCKED_TRIES and locked(exc):
                        await asyncio.sleep(LOCKED_WAIT)  # the loop goes on meanwhile
                        continue
                    raise
                await loop.run_in_executor(self._executor, transaction.commit)
                COUNTS.commits += 1
                return outcomes
        except Exception:
            await loop.run_in_executor(self._executor, self._release_loop_connection)
        return await loop.run_in_executor(self._executor, self._execute, group)

    async def _execute_async(self, group: list[Entry]) -> list[tuple[bool, Any]]:
        """PostgreSQL: the group in one transaction on the loop's asyncio connection; the
        thread's way (``_execute``, which isolates a failing write) when that fails."""
        try:
            if self._async_connection is None:
                import psycopg

                url = self._engine.url.set(drivername="postgresql")
                self._async_connection = await psycopg.AsyncConnection.connect(
                    url.render_as_string(hide_password=False), options=PG_WRITER_OPTIONS,
                    application_name=WRITER_NAME)
            connection = self._async_connection
            try:
                async with connection.cursor() as cursor:
                    results: list[tuple[bool, Any]] = [(True, None)] * len(group)
                    for bulk, indexes in kinds(group).items():
                        values = await cast(StepWrite, bulk).run_async(
                            cursor, [group[i][1] for i in indexes])
                        place(results, indexes, values)
                await connection.commit()
                COUNTS.commits += 1
            except Exception:
                await connection.rollback()
                raise
            return results
        except Exception:
            await self._release_async_connection()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._execute, group)

    async def _release_async_connection(self) -> None:
        connection, self._async_connection = self._async_connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()

    def _release_loop_connection(self) -> None:
        connection, self._loop_connection = self._loop_connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.rollback()
                connection.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                connection.commit()
            with contextlib.suppress(Exception):
                connection.close()


def _settle(group: list[Entry], outcomes: list[tuple[bool, Any]]) -> None:
    """Each caller's result (or exception), unless it stopped waiting."""
    for (_, _, future), (ok, value) in zip(group, outcomes, strict=True):
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
