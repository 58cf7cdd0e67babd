"""Bytes the store takes per message (issue 7: at most 1.5x the raw message, with raw,
transformed and sent content and the full-text index kept).

The engine's per-message sequence on the bench's message (``conduit bench``: MLLP in, ``set``
PID-5.1 upper, MLLP and file destinations, the receiver's ACK), then the full-text indexer;
SQLite's ``dbstat`` says how many bytes each table and index took. For the breakdown::

    .venv/bin/python -m tests.store.test_store_size 5000
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

from conduit.bench.loadgen import message
from conduit.bench.receiver import ack_for
from conduit.store import Store
from conduit.store.fulltext import Indexer
from conduit.store.store import Route

CONCURRENT = 16


def transformed(raw: bytes) -> bytes:
    """The bench channel's ``set`` step: PID-5.1 upper case."""
    segments = raw.split(b"\r")
    for index, segment in enumerate(segments):
        if segment.startswith(b"PID|"):
            fields = segment.split(b"|")
            family, _, rest = fields[5].partition(b"^")
            fields[5] = family.upper() + b"^" + rest
            segments[index] = b"|".join(fields)
    return b"\r".join(segments)


async def _write(store: Store, total: int) -> None:
    numbers = iter(range(total))

    async def flow() -> None:
        for n in numbers:
            raw = message(n, "S")
            out = transformed(raw)
            mid = await store.received("bench", raw, control_id=f"S{n:08d}",
                                       message_type="ADT^A01^ADT_A01",
                                       patient_id=str(100000 + n % 50000),
                                       source=f"127.0.0.1:{40000 + n % CONCURRENT}")
            await store.processed(mid, "TRANSFORMED", transformed=out, error=None, raw=raw,
                                  routes=[Route("downstream", out), Route("archive", out)])
            await asyncio.gather(
                store.delivered(mid, "downstream", "SENT", attempts=1,
                                response=ack_for(out)[1:-2], error=None),
                store.delivered(mid, "archive", "SENT", attempts=1, response=b"", error=None))

    await asyncio.gather(*(flow() for _ in range(CONCURRENT)))
    await store.close()


def _pages(path: Path) -> dict[str, int]:
    """Bytes of pages per table and index (all pages in use, when SQLite has no dbstat)."""
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        try:
            return dict(connection.execute(
                "SELECT name, sum(pgsize) FROM dbstat GROUP BY name"))
        except sqlite3.OperationalError:  # built without SQLITE_ENABLE_DBSTAT_VTAB
            used = (connection.execute("PRAGMA page_count").fetchone()[0]
                    - connection.execute("PRAGMA freelist_count").fetchone()[0])
            return {"(all pages)": used * connection.execute("PRAGMA page_size").fetchone()[0]}


def measure(directory: Path, total: int) -> dict[str, float]:
    """Bytes per message for each table and index (growth over an empty store)."""
    path = directory / "conduit.db"
    store = Store(f"sqlite:///{path}")
    store.migrate()
    store.engine.dispose()
    empty = _pages(path)
    store = Store(f"sqlite:///{path}")
    asyncio.run(_write(store, total))
    store = Store(f"sqlite:///{path}")
    Indexer(store.engine).run()
    store.engine.dispose()
    return {name: (size - empty.get(name, 0)) / total for name, size in _pages(path).items()
            if size > empty.get(name, 0)}


def test_a_message_takes_at_most_1_5x_its_raw_size(tmp_path: Path) -> None:
    sizes = measure(tmp_path, 2000)
    raw = len(message(0, "S"))
    total = sum(sizes.values())
    assert total < 1.5 * raw, f"{total:.0f} bytes/message for {raw}: {sizes}"


if __name__ == "__main__":
    import tempfile

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    with tempfile.TemporaryDirectory() as scratch:
        result = measure(Path(scratch), count)
    size = len(message(0, "S"))
    for name, value in sorted(result.items(), key=lambda item: -item[1]):
        print(f"{name:36} {value:8.1f}")
    print(f"{'total':36} {sum(result.values()):8.1f} bytes/message for {size} raw "
          f"({sum(result.values()) / size:.2f}x)")
