"""Measure the dashboard's pages over many stored messages (not part of the suite).

    .venv/bin/python -m tests.ops.measure_pages /tmp/million.db 1000000
    .venv/bin/python -m tests.ops.measure_pages postgresql://postgres@127.0.0.1/million 1000000

A SQLite file or a store URL (a PostgreSQL database is created when missing). Fills the store
like ``measure_browser`` (messages over 30 days in four channels, 90 % SENT, 6 % FILTERED, 3 %
ERROR, 1 % QUEUED, with the search fields intake writes) plus a delivery per unfiltered message
(ERROR ones with an error; the QUEUED ones to a destination no channel has, so the engine does
not resend them), analyzes it, starts an engine with the dashboard on that store and times each
page over HTTP as an operator: the median of ``repeat`` (third argument, default 5) after one
warm-up (printed as ``first``: the overview's counts are cached 2 s, the first is cold).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import text

from conduit.store import Store
from conduit.store.connect import create_database
from tests.ops.helpers import PASSWORD, login
from tests.ops.measure_browser import CHANNELS, fill
from tests.support import running_engine

#: Every page timed, ``{id}`` the newest ERROR message, ``{control_id}`` one from the middle.
PAGES = ["/", "/channels/orders", "/messages", "/messages?channel=orders&status=ERROR",
         "/messages?status=QUEUED", "/messages?type=ORU", "/messages?patient=P0123456",
         "/messages?field=MRN:P0123456", "/messages?field=PID-5.1:GARCIA",
         "/messages?field=PID-3.4:HOSP", "/messages?control_id={control_id}",
         "/messages?since=8d&until=7d", "/messages?since=29d&until=28d",
         "/messages?since=30d&until=1d",
         "/messages/{id}", "/messages/{id}/raw", "/api/charts", "/api/charts?channel=orders",
         "/api/channels", "/api/messages?channel=orders&status=ERROR",
         "/api/messages?field=MRN:P0123456", "/api/messages/export?limit=500", "/admin/audit",
         "/api/deadletters", "/api/deadletters?channel=orders"]


def store_url(target: str) -> str:
    """A store URL as given, or a SQLite file's."""
    return target if "://" in target else f"sqlite:///{target}"


def prepare(url: str, count: int) -> int:
    """The store at ``url`` with at least ``count`` messages, analyzed; the newest ERROR id."""
    create_database(url)
    store = Store(url)
    store.migrate()
    with store.engine.connect() as connection:
        have = connection.execute(text("SELECT count(*) FROM messages")).scalar() or 0
    if have < count:
        fill(store, count - have)
        began = time.perf_counter()
        with store.engine.begin() as connection:
            connection.execute(text("DELETE FROM deliveries"))
            connection.execute(text(
                "INSERT INTO deliveries (message_id, destination, position, status, attempts,"
                " error, updated_at) SELECT id, CASE status WHEN 'QUEUED' THEN 'held'"
                " ELSE 'archive' END, 0, status, 1, CASE status WHEN 'ERROR' THEN"
                " 'ConnectionRefusedError: [Errno 111] Connection refused' END, updated_at"
                " FROM messages WHERE status != 'FILTERED'"))
        print(f"deliveries in {time.perf_counter() - began:.1f}s")
    began = time.perf_counter()
    if store.engine.dialect.name == "postgresql":  # as autovacuum leaves a table after a load
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM ANALYZE"))
    else:
        with store.engine.begin() as c:
            c.execute(text("ANALYZE"))
    print(f"analyzed in {time.perf_counter() - began:.1f}s")
    with store.engine.connect() as connection:
        newest = connection.execute(text("SELECT max(id) FROM messages WHERE status = 'ERROR'"))
        found = int(newest.scalar() or 0)
    store.engine.dispose()
    return found


async def measure(url: str, message_id: int, count: int, repeat: int = 5,
                  settle: float = 5.0) -> dict[str, list[float]]:
    """Each page's times in seconds (the warm-up left out), printed as they come."""
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        channels = [{"name": name, "source": {"type": "mllp", "host": "127.0.0.1", "port": 0},
                     "destinations": [{"name": "archive", "type": "file",
                                       "path": str(tmp / "out" / "{{ msg['MSH-10'] }}")}]}
                    for name in CHANNELS]
        async with running_engine(channels, tmp, store_url=url, dashboard={}) as engine:
            web = engine.service("dashboard")
            users = web.app.state.web.users
            if not any(u["name"] == "operator" for u in await asyncio.to_thread(users.list)):
                await asyncio.to_thread(users.add, "operator", PASSWORD, "admin")
            await asyncio.sleep(settle)  # a few sampler points for the charts
            async with httpx.AsyncClient(base_url=web.url.rstrip("/"), timeout=60) as client:
                await login(client, "operator")
                for page in PAGES:
                    address = page.format(id=message_id, control_id=f"MSG{count // 2:09d}")
                    times = []
                    for _ in range(repeat + 1):
                        began = time.perf_counter()
                        answer = await client.get(address, headers={"Accept": "text/html"})
                        times.append(time.perf_counter() - began)
                        assert answer.status_code == 200, (address, answer.status_code)
                    kept = sorted(times[1:])
                    results[page] = kept
                    print(f"{address:45s} median {statistics.median(kept) * 1000:7.1f} ms  "
                          f"best {kept[0] * 1000:7.1f}  worst {kept[-1] * 1000:7.1f}  "
                          f"first {times[0] * 1000:7.1f}  ({len(answer.content):,} B)",
                          flush=True)
    return results


def main() -> None:
    url, count = store_url(sys.argv[1]), int(sys.argv[2])
    repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    message_id = prepare(url, count)
    asyncio.run(measure(url, message_id, count, repeat))


if __name__ == "__main__":
    main()
