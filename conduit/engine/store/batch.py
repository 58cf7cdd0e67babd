"""Group commits: many concurrent writers, one transaction.

A commit costs far more than a row (SQLite: 15,000 single-row commits/s against 35,000 rows/s in
groups of 100). Each caller awaits its own operation; operations that arrive while a transaction
runs are committed together in the next one, so every sender still hears back only once its own
row is durable. One failing operation does not sink its neighbours: the group is replayed one
operation per transaction to isolate it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

T = TypeVar("T")
Operation = Callable[[Connection], Any]


class BatchWriter:
    """Runs store operations in groups, each group in one transaction on one worker thread."""

    def __init__(self, engine: Engine, max_batch: int = 500) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._pending: list[tuple[Operation, asyncio.Future[Any]]] = []
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._task: asyncio.Task[None] | None = None

    async def run(self, operation: Callable[[Connection], T]) -> T:
        """Execute ``operation(connection)`` in the next group commit; return once committed."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="store-writer")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((operation, future))
        self._wake.set()
        return await future

    async def close(self) -> None:
        if self._task is not None:
            while self._pending:
                await asyncio.sleep(0.01)
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._executor.shutdown(wait=True)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                group = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                outcomes = await loop.run_in_executor(
                    self._executor, self._execute, [op for op, _ in group])
                for (_, future), (ok, value) in zip(group, outcomes, strict=True):
                    if future.done():
                        continue
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)

    def _execute(self, operations: list[Operation]) -> list[tuple[bool, Any]]:
        try:
            with self._engine.begin() as connection:
                return [(True, op(connection)) for op in operations]
        except Exception:
            if len(operations) == 1:
                return [self._execute_one(operations[0])]
        return [self._execute_one(op) for op in operations]

    def _execute_one(self, operation: Operation) -> tuple[bool, Any]:
        try:
            with self._engine.begin() as connection:
                return True, operation(connection)
        except Exception as exc:
            return False, exc
