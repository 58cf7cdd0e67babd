"""Joining the operations layer to an engine: one call before the engine starts."""

from __future__ import annotations

from dataclasses import dataclass

from conduit.engine.engine import Engine
from conduit.engine.services import Periodic
from conduit.ops.alerts import Alerter
from conduit.ops.metrics import Metrics
from conduit.ops.sampler import Sampler
from conduit.ops.server import Dashboard

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
    sampler = Sampler(metrics, depths=lambda: {
        name: engine.control.queue_depths(name) for name in list(engine.runtimes)})
    engine.services.append(sampler)
    alerter = None
    if engine.settings.alerts.rules:
        alerter = Alerter(engine, engine.settings.alerts, sampler)
        engine.services.append(Periodic("alerts", engine.settings.alerts.interval,
                                        alerter.evaluate))
    dashboard = None
    if engine.settings.dashboard.enabled:
        dashboard = Dashboard(engine, metrics, sampler, alerter)
        engine.services.append(dashboard)
    return Operations(metrics, sampler, alerter, dashboard)
