"""Joining the operations layer to an engine: one call before the engine starts."""

from __future__ import annotations

from dataclasses import dataclass

from conduit.engine.engine import Engine
from conduit.engine.services import Periodic, leased
from conduit.ops.alerts import Alerter
from conduit.ops.metrics import Metrics
from conduit.ops.sampler import Sampler
from conduit.ops.server import Dashboard
from conduit.store.cluster import cluster_of

__all__ = ["Operations", "attach"]


@dataclass(slots=True)
class Operations:
    """What :func:`attach` added to one engine."""

    metrics: Metrics
    sampler: Sampler
    alerter: Alerter | None
    dashboard: Dashboard | None


def attach(engine: Engine) -> Operations:
    """Count the engine's messages (``/metrics``), sample throughput, evaluate the alert rules
    and serve the dashboard (when enabled); each runs with or without the others."""
    metrics = Metrics()
    engine.observer.add(metrics)
    metrics.attach(engine)
    sampler = Sampler(metrics)
    engine.services.append(sampler)
    alerter = None
    if engine.settings.alerts.rules:
        alerter = Alerter(engine, engine.settings.alerts, sampler)
        # once per cluster on a PostgreSQL store: one host notifies, not each
        engine.services.extend(leased(
            [Periodic("alerts", engine.settings.alerts.interval, alerter.evaluate)],
            cluster_of(engine.store.engine)))
    dashboard = None
    if engine.settings.dashboard.enabled:
        dashboard = Dashboard(engine, metrics, sampler, alerter)
        engine.services.append(dashboard)
    return Operations(metrics, sampler, alerter, dashboard)
