"""The store writer on SQLite: statements on the loop, commit in the thread, and another writer's
lock met without blocking the loop or failing the write."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from conduit.store import Store

RAW = b"MSH|^~\\&|A|B|C|D|20260101||ADT^A01|W1|P|2.5\rPID|1||42\r"


def test_a_write_waits_for_another_writers_lock_without_blocking_the_loop(
        tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'conduit.db'}")
    store.migrate()

    async def scenario() -> None:
        first = await store.received("ch", RAW, control_id="W0", message_type="ADT^A01")
        other = sqlite3.connect(tmp_path / "conduit.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        write = asyncio.create_task(
            store.received("ch", RAW, control_id="W1", message_type="ADT^A01"))
        ticks, began = 0, time.monotonic()
        while time.monotonic() - began < 0.5:  # the loop keeps running meanwhile
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks >= 20 and not write.done()
        other.execute("ROLLBACK")
        other.close()
        second = await asyncio.wait_for(write, 10)
        assert second == first + 1
        await store.close()

    asyncio.run(scenario())
    record = store.get(2)
    assert record is not None and record.control_id == "W1"
    with store.engine.connect() as connection:  # the pool's connections still wait for locks
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
    store.engine.dispose()


def test_many_concurrent_writes_land_in_groups(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'conduit.db'}")
    store.migrate()

    async def scenario() -> list[int]:
        ids = await asyncio.gather(*(
            store.received("ch", RAW, control_id=f"M{n}", message_type="ADT^A01")
            for n in range(300)))
        await store.close()
        return ids

    ids = asyncio.run(scenario())
    assert sorted(ids) == list(range(1, 301))
    assert store.counts() == {"ch": {"RECEIVED": 300}}
    store.engine.dispose()


def test_a_short_lock_is_waited_out_on_the_loop(tmp_path: Path, monkeypatch: Any) -> None:
    """A lock held for a few ms (the indexing process's transaction) is tried again on the loop:
    the group does not go to the writer thread and its new connection."""
    from conduit.store.batch import BatchWriter

    threaded: list[int] = []
    original = BatchWriter._execute
    monkeypatch.setattr(BatchWriter, "_execute",
                        lambda self, group: threaded.append(len(group)) or original(self, group))
    store = Store(f"sqlite:///{tmp_path / 'conduit.db'}")
    store.migrate()

    async def scenario() -> None:
        await store.received("ch", RAW, control_id="W0", message_type="ADT^A01")
        other = sqlite3.connect(tmp_path / "conduit.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        write = asyncio.create_task(
            store.received("ch", RAW, control_id="W1", message_type="ADT^A01"))
        await asyncio.sleep(0.005)
        assert not write.done()
        other.execute("ROLLBACK")
        other.close()
        assert await asyncio.wait_for(write, 10) == 2
        await store.close()

    asyncio.run(scenario())
    assert threaded == []
    assert store.counts() == {"ch": {"RECEIVED": 2}}
    store.engine.dispose()


def test_the_writing_process_tries_for_a_lock_often_rather_than_sleeping(
        tmp_path: Path) -> None:
    """A group that meets another writer's lock gets it soon after it is free: SQLite's own
    wait sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50 ... ms between tries (after a 135 ms lock
    it went on waiting until 178 ms), the group runner tries every ``LOCK_POLL``. Nothing fails;
    the pool's connections still wait for locks as before."""
    from conduit.store import writes
    from conduit.store.connect import make_engine
    from conduit.store.groups import GroupRunner

    Store(f"sqlite:///{tmp_path / 'conduit.db'}").migrate()
    engine = make_engine(f"sqlite:///{tmp_path / 'conduit.db'}")
    runner = GroupRunner(engine)
    row = ("ch", "2026-01-01 00:00:00.000000", 0, "RECEIVED", "L1", None, None, None, RAW,
           None, None, None)
    assert runner.run([(writes.insert_messages, (row, []))]) == [(True, 1)]  # connected
    other = sqlite3.connect(tmp_path / "conduit.db", isolation_level=None,
                            check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    released = [0.0]

    def release() -> None:
        time.sleep(0.135)  # SQLite's own wait would try at 128 ms, then at 178 ms
        other.execute("ROLLBACK")
        released[0] = time.monotonic()

    holder = threading.Thread(target=release)
    holder.start()
    outcome = runner.run([(writes.insert_messages, (row, []))])
    done = time.monotonic()
    holder.join()
    other.close()
    assert outcome == [(True, 2)]
    assert done - released[0] < 0.03  # SQLite's own wait: 43 ms
    runner.release()
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
    engine.dispose()
