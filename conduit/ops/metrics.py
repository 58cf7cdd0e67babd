"""Prometheus metrics: an observer of the engine (``core.observer``), so the hot path stays cheap.

The runtime and delivery tell the engine's observer what happens to each message (stored,
processed, answered, attempted, delivered, timed); :class:`Metrics` counts it. Label children are
bound once per channel, and the hot path adds to their values directly (:class:`_Count`,
:class:`_Timing`): a lock and an add, without prometheus_client's per-call checks and, for a
histogram, its walk over the buckets (a message's counting went from ~12 to ~5 µs). Queue depths
and breaker states are read when Prometheus scrapes (:class:`EngineCollector`), never on the hot
path. Each engine has its own registry (no global state), so several engines in one process
(tests) do not collide.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from conduit.core.observer import Observer, Stage
from conduit.ops.opcount import OperationsCollector

if TYPE_CHECKING:
    from conduit.engine.engine import Engine

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
                   60, 300)
BREAKER_VALUE = {"closed": 0, "half-open": 1, "half_open": 1, "open": 2}


#: Messages whose receipt time is kept at most (for end-to-end latency), and for how long: a
#: message that has not settled by then (a long outage's backlog, or one settled by another
#: process) gives no end-to-end time rather than memory kept forever.
STARTED_MAX = 100_000
STARTED_TTL = 3600.0
#: Failed messages remembered so that a later delivery's ERROR answer is not counted again
#: (a message's other deliveries usually finish within their retries, well before this many
#: other messages fail; one finishing later than that is counted twice).
RECENTLY_FAILED_MAX = 100_000


class Metrics(Observer):
    """The engine's metrics and registry, counting what the engine tells its observer."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received_total = Counter("conduit_messages_received", "Messages received (stored).",
                                ["channel"], registry=r)
        self.filtered = Counter("conduit_messages_filtered", "Messages filtered out.",
                                ["channel"], registry=r)
        self.sent = Counter("conduit_messages_sent", "Messages delivered to every destination.",
                            ["channel"], registry=r)
        self.errored = Counter("conduit_messages_errored", "Messages ending in ERROR.",
                               ["channel"], registry=r)
        self.deliveries = Counter("conduit_deliveries", "Deliveries finished, by outcome.",
                                 ["channel", "destination", "status"], registry=r)
        self.attempts_failed = Counter("conduit_delivery_attempts_failed",
                                       "Delivery attempts that failed and will be retried.",
                                       ["channel", "destination"], registry=r)
        self.acks = Counter("conduit_acks", "Answers given to senders, by ACK code.",
                            ["channel", "code"], registry=r)
        self.processing = Histogram("conduit_processing_seconds",
                                    "Pipeline time per message (parse, filter, transform, route).",
                                    ["channel"], buckets=LATENCY_BUCKETS, registry=r)
        self.delivery = Histogram("conduit_delivery_seconds",
                                  "Time to deliver to one destination, retries included.",
                                  ["channel", "destination"], buckets=LATENCY_BUCKETS,
                                  registry=r)
        self.end_to_end = Histogram("conduit_end_to_end_seconds",
                                    "From receipt to the last destination's SENT.",
                                    ["channel"], buckets=LATENCY_BUCKETS, registry=r)

        #: Each channel's bound label children, made on the channel's first event.
        self.channels: dict[str, ChannelMetrics] = {}
        self._collector: EngineCollector | None = None

    def channel(self, name: str) -> ChannelMetrics:
        bound = self.channels.get(name)
        if bound is None:
            bound = self.channels[name] = ChannelMetrics(self, name)
        return bound

    # -- Observer --------------------------------------------------------------------------

    def received(self, channel: str, message_id: int, status: str) -> None:
        m = self.channels.get(channel) or self.channel(channel)
        m.count_received.inc(1)
        if status == "ERROR":
            m.count_errored.inc(1)
        elif m.works:  # a listeners-only process never hears the message settle
            m.start(message_id)

    def processed(self, channel: str, message_id: int, status: str) -> None:
        m = self.channels.get(channel) or self.channel(channel)
        m.works = True
        if status == "QUEUED":
            m.start(message_id)
        else:
            m.finished(message_id, status)

    def answered(self, channel: str, code: str) -> None:
        (self.channels.get(channel) or self.channel(channel)).ack(code)

    def attempt_failed(self, channel: str, destination: str, message_id: int) -> None:
        self.channel(channel).attempt_failed(destination)

    def delivered(self, channel: str, destination: str, message_id: int, status: str,
                  final: str) -> None:
        m = self.channels.get(channel) or self.channel(channel)
        m.delivered(destination, status)
        if final == "SENT" or final == "ERROR":
            m.finished(message_id, final)

    def timed(self, channel: str, stage: Stage, seconds: float,
              destination: str | None = None) -> None:
        m = self.channels.get(channel) or self.channel(channel)
        if stage == "processing":
            m.time_processing.observe(seconds)
        elif destination is not None:
            m.delivery_time(destination, seconds)

    def attach(self, engine: Engine) -> None:
        """Add the scrape-time gauges of ``engine`` (once)."""
        if self._collector is None:
            self._collector = EngineCollector(engine)
            self.registry.register(self._collector)
            self.registry.register(OperationsCollector(engine))


class _Timing:
    """The hot path's handle on a histogram child: its sum and its bucket (found by bisection)
    get one add each, as ``Histogram.observe`` does them (``amount <= bound`` is bisect_left)."""

    __slots__ = ("_bounds", "_buckets", "_sum")

    def __init__(self, child: Any) -> None:
        self._sum = child._sum
        self._buckets = child._buckets
        self._bounds = child._upper_bounds

    def observe(self, seconds: float) -> None:
        self._sum.inc(seconds)
        self._buckets[bisect_left(self._bounds, seconds)].inc(1)


def _count(child: Any) -> Any:
    """The hot path's handle on a counter child: its value (``inc(amount)`` under its lock)."""
    return child._value


class ChannelMetrics:
    """One channel's bound label children (bound once), and the hot path's handles on their
    values (see the module docstring)."""

    def __init__(self, metrics: Metrics, channel: str) -> None:
        self.metrics = metrics
        self.name = channel
        self.received = metrics.received_total.labels(channel)
        self.filtered = metrics.filtered.labels(channel)
        self.sent = metrics.sent.labels(channel)
        self.errored = metrics.errored.labels(channel)
        self.processing = metrics.processing.labels(channel)
        self.end_to_end = metrics.end_to_end.labels(channel)
        #: the hot path's handles on them
        self.count_received = _count(self.received)
        self.count_filtered = _count(self.filtered)
        self.count_sent = _count(self.sent)
        self.count_errored = _count(self.errored)
        self.time_processing = _Timing(self.processing)
        self.time_end_to_end = _Timing(self.end_to_end)
        self._acks: dict[str, Any] = {}
        self._destinations: dict[tuple[str, str], Any] = {}
        self._delivery: dict[str, _Timing] = {}
        self._failed: dict[str, Any] = {}
        #: message id -> monotonic time of receipt, while in flight (for end-to-end latency);
        #: kept only once this process is seen running the channel's pipeline (``works``), at
        #: most ``STARTED_MAX`` entries for at most ``STARTED_TTL`` seconds
        self.started: dict[int, float] = {}
        #: the last messages counted as ERROR, oldest first (each is counted once)
        self.recently_failed: OrderedDict[int, None] = OrderedDict()
        self.works = False

    def start(self, message_id: int) -> None:
        """Note when a message this process will settle was received (the first time)."""
        started = self.started
        if message_id in started:
            return
        moment = time.monotonic()
        if started:
            oldest = next(iter(started))
            if moment - started[oldest] > STARTED_TTL or len(started) >= STARTED_MAX:
                del started[oldest]  # one out per one in: the map stays bounded
        started[message_id] = moment

    def ack(self, code: str) -> None:
        value = self._acks.get(code)
        if value is None:
            value = self._acks[code] = _count(self.metrics.acks.labels(self.name, code))
        value.inc(1)

    def delivered(self, destination: str, status: str) -> None:
        key = (destination, status)
        value = self._destinations.get(key)
        if value is None:
            value = self._destinations[key] = _count(self.metrics.deliveries.labels(
                self.name, destination, status))
        value.inc(1)

    def destination_totals(self) -> dict[str, dict[str, float]]:
        """Deliveries finished so far per destination and outcome (``SENT``, ``ERROR``)."""
        totals: dict[str, dict[str, float]] = {}
        for (destination, status), value in list(self._destinations.items()):
            totals.setdefault(destination, {})[status] = float(value.get())
        return totals

    def delivery_time(self, destination: str, seconds: float) -> None:
        timing = self._delivery.get(destination)
        if timing is None:
            timing = self._delivery[destination] = _Timing(self.metrics.delivery.labels(
                self.name, destination))
        timing.observe(seconds)

    def attempt_failed(self, destination: str) -> None:
        value = self._failed.get(destination)
        if value is None:
            value = self._failed[destination] = _count(self.metrics.attempts_failed.labels(
                self.name, destination))
        value.inc(1)

    def finished(self, message_id: int, status: str) -> None:
        """A message reached a final status. ERROR is counted once per message: after one
        delivery failed, the store answers ERROR for each of its deliveries finishing later."""
        if status == "ERROR":
            if message_id in self.recently_failed:
                return
            self.recently_failed[message_id] = None
            if len(self.recently_failed) > RECENTLY_FAILED_MAX:
                self.recently_failed.popitem(last=False)
        began = self.started.pop(message_id, None)
        if status == "SENT":
            self.count_sent.inc(1)
            if began is not None:
                self.time_end_to_end.observe(time.monotonic() - began)
        elif status == "ERROR":
            self.count_errored.inc(1)
        elif status == "FILTERED":
            self.count_filtered.inc(1)


class EngineCollector(Collector):
    """Gauges read at scrape time: queue depths, breaker states, blocked destinations,
    channel states."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("conduit_queue_depth", "Envelopes waiting in a queue.",
                                  labels=["channel", "queue"])
        breaker = GaugeMetricFamily("conduit_breaker_state",
                                    "Breaker per destination: 0 closed, 1 half-open, 2 open.",
                                    labels=["channel", "destination"])
        blocked = GaugeMetricFamily(
            "conduit_destination_blocked",
            "1 while an ordered destination holds its queue on a message that keeps failing.",
            labels=["channel", "destination"])
        state = GaugeMetricFamily("conduit_channel_up",
                                  "1 when the channel is started, 0 when paused or stopped.",
                                  labels=["channel", "state"])
        try:
            behind, seconds = self.engine.store.fulltext_lag()
        except Exception:  # the store unreachable: the other gauges still count
            behind, seconds = 0, 0.0
        lag = GaugeMetricFamily("conduit_fulltext_lag_messages",
                                "Messages the full-text indexer has not reached yet (by id).",
                                value=behind)
        lag_seconds = GaugeMetricFamily("conduit_fulltext_lag_seconds",
                                        "Seconds the oldest message not yet reached by the "
                                        "full-text indexer has waited.", value=seconds)
        waits = CounterMetricFamily(
            "conduit_backpressure_waits", "Messages the channel's source held back because a "
            "destination fell behind (backpressure), since the channel was deployed.",
            labels=["channel"])
        waited = CounterMetricFamily(
            "conduit_backpressure_wait_seconds", "Seconds those messages waited in all.",
            labels=["channel"])
        control = self.engine.control
        for name, runtime in list(self.engine.runtimes.items()):
            waits.add_metric([name], runtime.backpressure.held)
            waited.add_metric([name], runtime.backpressure.held_seconds)
            for queue, waiting in control.queue_depths(name).items():
                if waiting is not None:
                    depth.add_metric([name, queue], waiting)
            for destination, position in runtime.breaker_states().items():
                breaker.add_metric([name, destination], BREAKER_VALUE.get(position, 0))
            holding = runtime.blocked_destinations()
            for destination in runtime.workers_by_destination:
                blocked.add_metric([name, destination], 1 if destination in holding else 0)
            now = control.state(name)
            state.add_metric([name, now], 1 if now == "started" else 0)
        yield depth
        yield breaker
        yield blocked
        yield state
        yield waits
        yield waited
        yield lag
        yield lag_seconds
        yield GaugeMetricFamily(
            "conduit_bus_classic_queues", "RabbitMQ queues kept classic because they existed "
            "before quorum became the default (conduit bus migrate-queues moves them).",
            value=len(getattr(self.engine.bus, "classic_queues", ())))
