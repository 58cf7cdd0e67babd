"""SQLite's hot writes in a process of their own (``store.process``): what the engine asks for."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

from conduit.store import Store
from conduit.store.batch import BatchWriter
from conduit.store.store import Route
from tests.store.test_store import one_failing_write

RAW = b"MSH|^~\\&|A|B|C|D|20260101||ADT^A01|W1|P|2.5\rPID|1||42\r"


def _store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'conduit.db'}", writing_process=True)
    store.migrate()
    return store


def test_hot_writes_go_to_the_writing_process(tmp_path: Path, monkeypatch: Any) -> None:
    """Messages and deliveries are written by the other process: the engine's loop and its
    writer thread run none of them, and everything is committed and readable."""
    def not_here(*_: Any) -> None:
        raise AssertionError("written in the engine process")

    monkeypatch.setattr(BatchWriter, "_execute_inline", not_here)
    monkeypatch.setattr(BatchWriter, "_execute", not_here)
    store = _store(tmp_path)
    routes = [Route("a", RAW), Route("b", b"other")]

    async def scenario() -> tuple[int, str]:
        await store.writer.start()
        pid = store.writer._process._process.pid  # type: ignore[union-attr]
        ids = await asyncio.gather(*[
            store.accepted("ch", RAW, control_id=str(i), message_type="ADT^A01",
                           status="TRANSFORMED", transformed=RAW, error=None, routes=routes)
            for i in range(200)])
        finals = await asyncio.gather(*[
            store.delivered(i, name, "SENT", attempts=1, response=b"MSH|^~\\&|ACK", error=None)
            for i in ids for name in ("a", "b")])
        assert finals.count("SENT") >= 200
        name = Path(f"/proc/{pid}/comm").read_text().strip()
        await store.close()
        return int(pid), name

    pid, name = asyncio.run(scenario())
    assert pid != os.getpid()
    assert name == "conduit-writer"  # as ps, top and conduit bench show it
    assert store.counts() == {"ch": {"SENT": 200}}
    record = store.get(1)
    assert record is not None and record.raw == RAW
    assert [d.content for d in record.deliveries] == [RAW, b"other"]
    store.engine.dispose()


def test_a_failing_write_fails_alone_in_the_process(tmp_path: Path) -> None:
    store = _store(tmp_path)
    results = one_failing_write(store)
    assert isinstance(results[1], Exception) and "NOT NULL" in str(results[1])
    assert isinstance(results[0], int) and isinstance(results[2], int)
    assert store.counts() == {"c": {"RECEIVED": 2}}
    store.engine.dispose()


def test_a_writing_process_that_dies_is_replaced(tmp_path: Path) -> None:
    """The writes it had fail (their senders are not acknowledged and resend); the next group
    starts a new process and nothing already committed is lost."""
    store = _store(tmp_path)

    async def scenario() -> None:
        first = await store.received("c", b"1", control_id="1", message_type=None)
        process = store.writer._process._process  # type: ignore[union-attr]
        os.kill(process.pid, signal.SIGKILL)
        await asyncio.to_thread(process.join, 10)
        with contextlib.suppress(ConnectionError):  # it met the dead process: a sender resends
            await store.received("c", b"2", control_id="2", message_type=None)
        third = await store.received("c", b"3", control_id="3", message_type=None)
        assert third > first
        assert store.writer._process._process.pid != process.pid  # type: ignore[union-attr]
        await store.close()

    asyncio.run(scenario())
    counts = store.counts()["c"]["RECEIVED"]
    assert counts in (2, 3)  # "2" may have been committed before the process died
    store.engine.dispose()
