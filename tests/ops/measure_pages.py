"""Measure the dashboard's pages over many stored messages (not part of the suite).

    .venv/bin/python -m tests.ops.measure_pages /tmp/million.db 1000000

Fills a SQLite store like ``measure_browser`` (messages over 30 days in four channels, 90 %
SENT, 6 % FILTERED, 3 % ERROR, 1 % QUEUED) plus a delivery per unfiltered message (ERROR ones
with an error; the QUEUED ones to a destination no channel has, so the engine does not resend
them), starts an engine with the dashboard on that store and times each page over HTTP (best
of five, after one warm-up), as an operator.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import text

from conduit.store import Store
from tests.ops.helpers import PASSWORD, login
from tests.ops.measure_browser import CHANNELS, fill
from tests.support import running_engine

PAGES = ["/", "/channels/orders", "/messages", "/messages?channel=orders&status=ERROR",
         "/messages?status=QUEUED", "/messages/{id}", "/messages/{id}/raw",
         "/api/charts", "/api/charts?channel=orders", "/api/channels", "/admin/audit"]


def prepare(path: Path, count: int) -> int:
    store = Store(f"sqlite:///{path}")
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
            connection.execute(text("ANALYZE"))
        print(f"deliveries in {time.perf_counter() - began:.1f}s")
    with store.engine.connect() as connection:
        newest = connection.execute(text("SELECT max(id) FROM messages WHERE status = 'ERROR'"))
        return int(newest.scalar() or 0)


async def measure(path: Path, message_id: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        channels = [{"name": name, "source": {"type": "mllp", "host": "127.0.0.1", "port": 0},
                     "destinations": [{"name": "archive", "type": "file",
                                       "path": str(tmp / "out" / "{{ msg['MSH-10'] }}")}]}
                    for name in CHANNELS]
        async with running_engine(channels, tmp, store_url=f"sqlite:///{path}",
                                  dashboard={}) as engine:
            web = engine.service("dashboard")
            users = web.app.state.web.users
            if not any(u["name"] == "operator" for u in await asyncio.to_thread(users.list)):
                await asyncio.to_thread(users.add, "operator", PASSWORD, "admin")
            await asyncio.sleep(5)  # a few sampler points for the charts
            async with httpx.AsyncClient(base_url=web.url.rstrip("/"), timeout=60) as client:
                await login(client, "operator")
                for page in PAGES:
                    url = page.format(id=message_id)
                    times = []
                    for _ in range(6):
                        began = time.perf_counter()
                        answer = await client.get(url, headers={"Accept": "text/html"})
                        times.append(time.perf_counter() - began)
                        assert answer.status_code == 200, (url, answer.status_code)
                    kept = sorted(times[1:])
                    print(f"{url:45s} best {kept[0] * 1000:7.1f} ms  median "
                          f"{kept[len(kept) // 2] * 1000:7.1f} ms  worst {kept[-1] * 1000:7.1f} ms"
                          f"  ({len(answer.content):,} B)")


def main() -> None:
    path, count = Path(sys.argv[1]), int(sys.argv[2])
    message_id = prepare(path, count)
    asyncio.run(measure(path, message_id))


if __name__ == "__main__":
    main()
