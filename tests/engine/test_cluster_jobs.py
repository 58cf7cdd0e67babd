"""Issue 16, item 4: on a PostgreSQL store a background job runs once per cluster and moves to
another host when its holder dies (``services.ClusterLeased``), on the real local PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

from sqlalchemy import create_engine, text

from conduit.engine.services import ClusterLeased, Periodic, leased
from conduit.store import Store
from conduit.store.cluster import Cluster, cluster_of


def _job(runs: list[str], who: str) -> Periodic:
    async def run() -> None:
        runs.append(who)

    return Periodic("indexing", 0.1, run)


async def _until(condition: object, seconds: float) -> float:
    began = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - began < seconds, "not within the time allowed"
        await asyncio.sleep(0.05)
    return time.monotonic() - began


def test_one_holder_runs_the_job_and_the_other_takes_over(postgres_url: str) -> None:
    stores = [Store(postgres_url), Store(postgres_url)]
    runs: list[str] = []

    async def run() -> None:
        first, second = (ClusterLeased(_job(runs, who), "job:indexing",
                                       Cluster(store.engine), retry=0.5)
                         for who, store in zip(("first", "second"), stores, strict=True))
        await first.start()
        await _until(lambda: first.running, 5)
        await second.start()
        await asyncio.sleep(1.5)
        assert first.running and not second.running
        assert set(runs) == {"first"}
        # the holder's connection dies (as when its host does): PostgreSQL frees the lock
        pid = first.lease.pid()
        admin = create_engine(stores[0].engine.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        admin.dispose()
        moved = await _until(lambda: second.running, 5)
        await _until(lambda: not first.running, 5)
        runs.clear()
        await asyncio.sleep(0.5)
        assert set(runs) == {"second"}, runs
        assert moved < 3
        await first.stop()
        await second.stop()

    try:
        asyncio.run(run())
    finally:
        for store in stores:
            store.engine.dispose()


HOLDER = """
import asyncio, sys
from conduit.engine.services import ClusterLeased, Periodic
from conduit.store import Store
from conduit.store.cluster import Cluster

async def main():
    async def noop():
        return None
    job = ClusterLeased(Periodic("retention", 60, noop), "job:retention",
                        Cluster(Store(sys.argv[1]).engine), retry=0.5)
    await job.start()
    while not job.running:
        await asyncio.sleep(0.05)
    print("holding", flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


def test_killing_the_holding_process_moves_the_job(postgres_url: str) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, postgres_url],
                              stdout=subprocess.PIPE, text=True)
    store = Store(postgres_url)
    try:
        assert holder.stdout is not None
        while (line := holder.stdout.readline()) and line.strip() != "holding":
            pass  # the holder's log lines
        assert line.strip() == "holding"

        async def run() -> float:
            async def noop() -> None:
                return None

            other = ClusterLeased(Periodic("retention", 60, noop), "job:retention",
                                  Cluster(store.engine), retry=0.5)
            await other.start()
            await asyncio.sleep(1.2)
            assert not other.running  # the other process holds it
            holder.kill()
            moved = await _until(lambda: other.running, 10)
            await other.stop()
            return moved

        assert asyncio.run(run()) < 5
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
        store.engine.dispose()


def test_embedded_jobs_are_not_leased(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    job = _job([], "only")
    assert leased([job], cluster_of(store.engine)) == [job]
    store.engine.dispose()
