"""SQLite's hot writes in a process of their own.

The engine's event loop is its bottleneck, and on SQLite a sixth of its time went into running a
group's statements (see ``batch``: in a thread of the engine they waited for the GIL after every
SQLite step). In a process of their own they take no time from the loop and no GIL from it: the
loop sends the group's step writes (``writes``, by name, with their parameters) over a socket and
awaits the answer, one group at a time, as the writer thread would.

What a group cannot send (plain callables: reprocessing, events) still runs in the engine; SQLite
lets the two processes take turns at the write lock. If the process dies, the groups it had are
answered with an error (the sender was not acknowledged and resends) and the next group starts a
new process.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import pickle
import signal
import socket
import struct
import threading
import time
from collections.abc import Sequence
from typing import Any

from conduit.store.connect import INDEXER_NAME, WRITER_NAME, make_engine
from conduit.store.groups import GroupRunner
from conduit.store.opcount import COUNTS

_HEADER = struct.Struct("!I")
ENGINE_CHECK = 1.0  # seconds between a helper's checks that the engine still runs
#: Helper processes' names (``ps``, ``top``, ``conduit bench``'s CPU per process), and on
#: PostgreSQL their connections' (``pg_stat_activity.application_name``).


def helper_context() -> Any:
    """Where the engine's helper processes (this one, the full-text indexer) come from: a fork
    server started once per engine process, with the store's modules loaded (spawning each
    imports SQLAlchemy again: about a second; forking from the server: a few ms)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__, "conduit.store.store",
                                    "conduit.store.fulltext"])
    return context


def name_process(name: str) -> None:
    """Name this helper process as ``ps``, ``top`` and ``conduit bench`` show it (Linux: the
    15-character command name; elsewhere nothing)."""
    with contextlib.suppress(OSError), open("/proc/self/comm", "w") as comm:
        comm.write(name[:15])


def ignore_interrupts() -> None:
    """In a helper process: Ctrl-C reaches the whole process group; the engine stops on it and
    stops its helpers, which should not die mid-transaction (or print a traceback) first."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def follow_engine(engine_pid: int) -> None:
    """In a pool's helper process (the full-text indexer): :func:`ignore_interrupts`, a lower
    priority (background work: under load the hot path's processes get the CPU first and the
    index catches up after), and exit when the engine process is gone (``kill -9``). A pool's
    worker waits on a queue it holds both ends of, so it would never notice; this process's own
    socket (``serve``) notices by itself."""
    ignore_interrupts()
    name_process(INDEXER_NAME)
    os.nice(10)

    def watch() -> None:
        while True:
            time.sleep(ENGINE_CHECK)
            try:
                os.kill(engine_pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:  # the pid exists (someone's): still running
                pass

    threading.Thread(target=watch, name="follow-engine", daemon=True).start()


class WritingProcess:
    """The engine's end: start the process, send it groups, read its answers."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._process: Any = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def start(self) -> None:
        if self._writer is not None:
            return
        ours, theirs = socket.socketpair()
        self._process = helper_context().Process(
            target=serve, args=(self.url, theirs), daemon=True, name="conduit-store-writer")
        await asyncio.to_thread(self._process.start)
        theirs.close()
        self._reader, self._writer = await asyncio.open_connection(sock=ours)

    async def execute(self, operations: Sequence[tuple[str, Any]]) -> list[tuple[bool, Any]]:
        """Each ``(write name, parameters)`` in one transaction; ``(ok, result or exception)``
        for each, in order. Raises ConnectionError if the process is gone."""
        if self._writer is None or self._reader is None:
            await self.start()
        assert self._writer is not None and self._reader is not None
        try:
            self._writer.write(_frame(pickle.dumps(list(operations), pickle.HIGHEST_PROTOCOL)))
            size = _HEADER.unpack(await self._reader.readexactly(_HEADER.size))[0]
            answer: list[tuple[bool, Any]]
            answer, counted = pickle.loads(await self._reader.readexactly(size))
        except (OSError, EOFError, asyncio.IncompleteReadError) as exc:
            await self.close()
            raise ConnectionError("the store's writing process is gone") from exc
        COUNTS.add(counted)  # its statements, rows and commits are this process's (``opcount``)
        return answer

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()  # the process sees the end of its input and stops
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        process, self._process = self._process, None
        if process is not None:
            await asyncio.to_thread(process.join, 10)
            if process.is_alive():
                process.kill()
                await asyncio.to_thread(process.join, 5)


def serve(url: str, connection: socket.socket) -> None:
    """The process: read a group, write it in one transaction (a failing write alone: see
    ``groups.GroupRunner``), answer; until the engine closes its end."""
    ignore_interrupts()
    name_process(WRITER_NAME)
    from conduit.store import writes

    engine = make_engine(url, name=WRITER_NAME)
    runner = GroupRunner(engine)
    with connection:
        while True:
            header = _read(connection, _HEADER.size)
            if header is None:
                break
            body = _read(connection, _HEADER.unpack(header)[0])
            if body is None:
                break
            group = [(getattr(writes, name), params) for name, params in pickle.loads(body)]
            answer = [(ok, value if ok else _portable(value))
                      for ok, value in runner.run(group)]
            connection.sendall(_frame(pickle.dumps((answer, COUNTS.take()),
                                                   pickle.HIGHEST_PROTOCOL)))
    runner.release()
    engine.dispose()


def _frame(payload: bytes) -> bytes:
    return _HEADER.pack(len(payload)) + payload


def _read(connection: socket.socket, size: int) -> bytes | None:
    """Exactly ``size`` bytes, or None at the end of input."""
    chunks = []
    while size:
        chunk = connection.recv(min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _portable(error: BaseException) -> BaseException:
    """``error`` if it survives pickling, else a RuntimeError that says what it was."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error
