"""The bus's and the store's operations so far, as Prometheus counters read at scrape time.

The bus (``bus.base.BusOperations``) and the store's group writes (``store.opcount``) count in
plain integers on their own path; this collector only reads them when ``/metrics`` is scraped,
so counting costs the hot path an add, not a lock. ``conduit bench`` reads them before and
after its measured window: operations per message.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from conduit.store.opcount import COUNTS

if TYPE_CHECKING:
    from conduit.engine.engine import Engine

#: The counters' names on ``/metrics`` (each with ``_total``), and the label they vary by.
BUS_METRIC = "conduit_bus_operations"
STORE_METRIC = "conduit_store_operations"
LABEL = "operation"


class OperationsCollector(Collector):
    """``conduit_bus_operations_total{operation=publish|deliver|ack|confirm}`` and
    ``conduit_store_operations_total{operation=statement|row|commit}``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        bus = CounterMetricFamily(
            BUS_METRIC, "Bus operations: envelopes published, delivered to a consumer, "
            "acknowledgements sent and publisher confirms received (RabbitMQ: frames).",
            labels=[LABEL])
        counted = self.engine.bus.operations
        for name, value in (("publish", counted.publishes), ("deliver", counted.deliveries),
                            ("ack", counted.acks), ("confirm", counted.confirms)):
            bus.add_metric([name], value)
        yield bus
        store = CounterMetricFamily(
            STORE_METRIC, "The store's group writes in this process: statements executed, "
            "rows they wrote, transactions committed.", labels=[LABEL])
        for name, value in (("statement", COUNTS.statements), ("row", COUNTS.rows),
                            ("commit", COUNTS.commits)):
            store.add_metric([name], value)
        yield store
