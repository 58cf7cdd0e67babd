"""The engine's own background jobs, one module each; :func:`engine_jobs` lists them in the
order the engine starts them. They run with or without the dashboard, and on a PostgreSQL store
once per cluster (``services.ClusterLeased``)."""

from __future__ import annotations

from conduit.engine.jobs.indexing import FullTextIndexing
from conduit.engine.jobs.retention import retention
from conduit.engine.services import Service, leased
from conduit.engine.settings import Settings
from conduit.store import Store
from conduit.store.cluster import cluster_of

__all__ = ["engine_jobs"]


def engine_jobs(settings: Settings, store: Store) -> list[Service]:
    """The jobs this engine runs: full-text indexing, and retention when rules are set."""
    jobs: list[Service] = [FullTextIndexing(store)]
    pruning = retention(settings, store)
    if pruning is not None:
        jobs.append(pruning)
    return leased(jobs, cluster_of(store.engine))
