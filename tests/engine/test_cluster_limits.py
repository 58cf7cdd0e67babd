"""Issue 16, item 4: on a PostgreSQL store the rate limit and the breaker hold for the cluster.

Each "process" here is its own SQLAlchemy engine (its own connections), as two engine hosts
sharing one store have; the database is the real local PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from conduit.connectors.base import BreakerPolicy
from conduit.core.errors import RetryableError
from conduit.engine.resilience import BREAKER_REFRESH, Breaker, RateLimiter
from conduit.store import Store
from conduit.store.cluster import Cluster, cluster_of


@pytest.fixture
def stores(postgres_url: str):
    first = Store(postgres_url)
    first.migrate()
    second = Store(postgres_url)
    yield first, second
    first.engine.dispose()
    second.engine.dispose()


def _cluster(store: Store) -> Cluster:
    cluster = cluster_of(store.engine)
    assert cluster is not None
    return cluster


async def _send_for(limiter: RateLimiter, seconds: float, times: list[float]) -> None:
    """One sender per limiter, as fast as the limiter lets it, for ``seconds``."""
    end = time.monotonic() + seconds
    while True:
        await limiter.acquire()
        now = time.monotonic()
        if now >= end:
            return
        times.append(now)


def test_rate_limit_holds_across_two_processes(stores: tuple[Store, Store]) -> None:
    """1,200/min on each of two processes (four senders each) is 20/s for both together:
    over 5 s, 100 sends within 5 % (each process alone would send 100)."""
    first, second = stores
    limiters = [RateLimiter("1200/min", cluster=_cluster(store), key="adt.ehr")
                for store in (first, second)]
    times: list[float] = []

    async def run() -> None:
        await asyncio.gather(*(_send_for(limiter, 5.0, times)
                               for limiter in limiters for _ in range(4)))

    asyncio.run(run())
    assert 95 <= len(times) <= 105, len(times)
    # both processes sent, and permits were taken several at a time
    assert all(limiter.statements < len(times) / 2 for limiter in limiters)


def test_embedded_rate_limit_stays_in_process(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    assert cluster_of(store.engine) is None
    store.engine.dispose()


def test_breaker_opened_by_one_process_is_open_for_the_other(
        stores: tuple[Store, Store]) -> None:
    first, second = stores
    policy = BreakerPolicy(failures=2, reset=30)

    async def run() -> None:
        one = Breaker(policy, "adt.ehr", cluster=_cluster(first))
        other = Breaker(policy, "adt.ehr", cluster=_cluster(second))
        await other.refresh()
        assert other.state == "closed"
        one.failure(RetryableError("refused"))
        assert one.failure(RetryableError("refused"))  # the second failure opens it
        await one.settled()
        await asyncio.sleep(BREAKER_REFRESH)
        await other.refresh()
        assert other.state == "open"
        assert 25 < other.remaining_open() <= 30
        one.close()  # an operator's reset, or a trial that passed
        await one.settled()
        await asyncio.sleep(BREAKER_REFRESH)
        await other.refresh()
        assert other.state == "closed"

    asyncio.run(run())


def test_rate_limit_without_its_database_limits_this_process() -> None:
    """The store unreachable: sends are still spaced (by this process alone), never unlimited
    and never failed by the limiter."""
    from sqlalchemy import create_engine

    dead = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none",
                         connect_args={"connect_timeout": 1})
    limiter = RateLimiter("600/min", cluster=Cluster(dead), key="adt.ehr")
    times: list[float] = []

    async def run() -> None:
        for _ in range(5):
            await limiter.acquire()
            times.append(time.monotonic())

    asyncio.run(run())
    dead.dispose()
    assert times[-1] - times[0] >= 4 * 0.1 * 0.9
