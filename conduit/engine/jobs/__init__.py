"""The engine's own background jobs, one module each; :func:`engine_jobs` lists them in the
order the engine starts them. They run with or without the dashboard, and on a PostgreSQL store
once per cluster (``services.ClusterLeased``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from conduit.bus import Bus
from conduit.engine.channel import Channel
from conduit.engine.jobs.indexing import FullTextIndexing
from conduit.engine.jobs.retention import retention
from conduit.engine.jobs.sweeper import Sweeper
from conduit.engine.services import Service, leased
from conduit.engine.settings import Settings
from conduit.store import Store
from conduit.store.cluster import cluster_of

__all__ = ["engine_jobs"]


def engine_jobs(settings: Settings, store: Store, bus: Bus | None = None,
                channels: Callable[[], Mapping[str, Channel]] | None = None) -> list[Service]:
    """The jobs this engine runs: full-text indexing, retention when rules are set, and the
    sweeper on a bus that holds the queues itself (RabbitMQ)."""
    jobs: list[Service] = [FullTextIndexing(store)]
    pruning = retention(settings, store)
    if pruning is not None:
        jobs.append(pruning)
    jobs = leased(jobs, cluster_of(store.engine))  # one process of a cluster runs each
    if (bus is not None and channels is not None and bus.holds_messages
            and settings.sweep.interval > 0):
        jobs.append(Sweeper(settings.sweep, store, bus, channels))  # takes its own lock
    return jobs
