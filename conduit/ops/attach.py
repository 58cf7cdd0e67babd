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

__all__ = ["CLUSTER_WIDE_RULES", "Operations", "attach"]

#: Alert kinds whose value every process reads alike (the store's last message, the broker's
#: queue depth): evaluated by one process of a cluster.
CLUSTER_WIDE_RULES = frozenset({"queue-depth", "idle"})


@dataclass(slots=True)
class Operations:
    """What :func:`attach` added to one engine."""

    metrics: Metrics
    sampler: Sampler
    alerter: Alerter | None
    dashboard: Dashboard | None
    #: On a PostgreSQL store: the rules evaluated once per cluster (see :func:`attach`).
    cluster_alerter: Alerter | None = None


def attach(engine: Engine) -> Operations:
    """Count the engine's messages (``/metrics``), sample throughput, evaluate the alert rules
    and serve the dashboard (when enabled: by default not in a workers-only process); each
    runs with or without the others."""
    metrics = Metrics()
    engine.observer.add(metrics)
    metrics.attach(engine)
    sampler = Sampler(metrics, depths=lambda: {
        name: engine.control.queue_depths(name) for name in list(engine.runtimes)})
    engine.services.append(sampler)
    alerter = cluster_alerter = None
    rules = engine.settings.alerts.rules
    cluster = cluster_of(engine.store.engine)
    # On a PostgreSQL store the rules that read what every process sees (the store, the
    # broker's queues) are evaluated once per cluster, by the process holding the lease; those
    # that read this process's own counts and breakers stay in each process, else the errors
    # of the processes not holding it would never alert.
    own = [rule for rule in rules if cluster is None or rule.kind not in CLUSTER_WIDE_RULES]
    shared = [rule for rule in rules if rule not in own]
    interval = engine.settings.alerts.interval
    if own:
        alerter = Alerter(engine, engine.settings.alerts.model_copy(update={"rules": own}),
                          sampler)
        engine.services.append(Periodic("alerts", interval, alerter.evaluate))
    if shared:
        cluster_alerter = Alerter(
            engine, engine.settings.alerts.model_copy(update={"rules": shared}), sampler)
        engine.services.extend(leased(
            [Periodic("cluster-alerts", interval, cluster_alerter.evaluate)], cluster))
    dashboard = None
    if engine.settings.serves_dashboard:
        dashboard = Dashboard(engine, metrics, sampler, alerter or cluster_alerter)
        engine.services.append(dashboard)
    return Operations(metrics, sampler, alerter or cluster_alerter, dashboard, cluster_alerter)
