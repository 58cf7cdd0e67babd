"""``/metrics`` carries the bus's and the store's operations (``ops.opcount``), read at scrape."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from prometheus_client import CollectorRegistry, generate_latest

from conduit.bus import EmbeddedBus
from conduit.ops.opcount import OperationsCollector
from conduit.store.opcount import COUNTS


def _scrape(registry: CollectorRegistry) -> dict[str, float]:
    values = {}
    for line in generate_latest(registry).decode().splitlines():
        if line.startswith("conduit_") and "_operations_total{" in line:
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_operations_are_counters_read_at_scrape_time() -> None:
    bus = EmbeddedBus()
    registry = CollectorRegistry()
    registry.register(OperationsCollector(cast(Any, SimpleNamespace(bus=bus))))
    before = _scrape(registry)
    assert before['conduit_bus_operations_total{operation="publish"}'] == 0
    bus.operations.publishes += 3
    bus.operations.confirms += 1
    COUNTS.add((4, 9, 2))
    after = _scrape(registry)
    assert after['conduit_bus_operations_total{operation="publish"}'] == 3
    assert after['conduit_bus_operations_total{operation="confirm"}'] == 1
    assert after['conduit_bus_operations_total{operation="deliver"}'] == 0
    grown = {name: after[name] - before[name] for name in after if "store" in name}
    assert grown == {'conduit_store_operations_total{operation="statement"}': 4,
                     'conduit_store_operations_total{operation="row"}': 9,
                     'conduit_store_operations_total{operation="commit"}': 2}


def test_the_engine_metrics_include_them() -> None:
    """``Metrics.attach`` registers them beside the engine's gauges."""
    from conduit.ops.metrics import Metrics

    metrics = Metrics()
    engine = SimpleNamespace(bus=EmbeddedBus(), runtimes={}, control=None,
                             store=SimpleNamespace(fulltext_lag=lambda: (0, 0.0)))
    metrics.attach(cast(Any, engine))
    names = {metric.name for metric in metrics.registry.collect()}
    assert {"conduit_bus_operations", "conduit_store_operations"} <= names
