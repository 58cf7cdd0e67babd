"""Prometheus metrics, observed at the seams of each channel so the hot path stays cheap.

Each channel's runtime is given an :class:`ObservedStore` (counts outcomes as the store records
them: received, filtered, sent, errored, end-to-end latency) and its receipts are counted by ACK
code. Label children are bound once per channel, so an increment is a lock and an add (about a
microsecond). Queue depths and breaker states are read when Prometheus scrapes
(:class:`EngineCollector`), never on the hot path. Each engine has its own registry (no global
state), so several engines in one process (tests) do not collide.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from conduit.engine.engine import Engine

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
                   60, 300)
BREAKER_VALUE = {"closed": 0, "half-open": 1, "half_open": 1, "open": 2}


class Metrics:
    """The engine's metrics and registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received = Counter("conduit_messages_received", "Messages received (stored).",
                                ["channel"], registry=r)
        self.filtered = Counter("conduit_messages_filtered", "Messages filtered out.",
                                ["channel"], registry=r)
        self.sent = Counter("conduit_messages_sent", "Messages delivered to every destination.",
                            ["channel"], registry=r)
        self.errored = Counter("conduit_messages_errored", "Messages ending in ERROR.",
                               ["channel"], registry=r)
        self.delivered = Counter("conduit_deliveries", "Deliveries finished, by outcome.",
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

    def channel(self, name: str) -> ChannelMetrics:
        return ChannelMetrics(self, name)

    def attach(self, engine: Engine) -> None:
        """Add the scrape-time gauges of ``engine`` (once)."""
        if not getattr(self, "_attached", False):
            self.registry.register(EngineCollector(engine))
            self._attached = True


class ChannelMetrics:
    """One channel's bound label children (bound once: increments stay cheap)."""

    def __init__(self, metrics: Metrics, channel: str) -> None:
        self.metrics = metrics
        self.name = channel
        self.received = metrics.received.labels(channel)
        self.filtered = metrics.filtered.labels(channel)
        self.sent = metrics.sent.labels(channel)
        self.errored = metrics.errored.labels(channel)
        self.processing = metrics.processing.labels(channel)
        self.end_to_end = metrics.end_to_end.labels(channel)
        self._acks: dict[str, Any] = {}
        self._destinations: dict[tuple[str, str], Any] = {}
        self._delivery: dict[str, Any] = {}
        self._failed: dict[str, Any] = {}
        #: message id -> monotonic time of receipt, while in flight (for end-to-end latency)
        self.started: dict[int, float] = {}

    def ack(self, code: str) -> None:
        child = self._acks.get(code)
        if child is None:
            child = self._acks[code] = self.metrics.acks.labels(self.name, code)
        child.inc()

    def delivered(self, destination: str, status: str) -> None:
        key = (destination, status)
        child = self._destinations.get(key)
        if child is None:
            child = self._destinations[key] = self.metrics.delivered.labels(
                self.name, destination, status)
        child.inc()

    def delivery_time(self, destination: str, seconds: float) -> None:
        child = self._delivery.get(destination)
        if child is None:
            child = self._delivery[destination] = self.metrics.delivery.labels(
                self.name, destination)
        child.observe(seconds)

    def attempt_failed(self, destination: str) -> None:
        child = self._failed.get(destination)
        if child is None:
            child = self._failed[destination] = self.metrics.attempts_failed.labels(
                self.name, destination)
        child.inc()

    def finished(self, message_id: int, status: str) -> None:
        """A message reached a final status."""
        began = self.started.pop(message_id, None)
        if status == "SENT":
            self.sent.inc()
            if began is not None:
                self.end_to_end.observe(time.monotonic() - began)
        elif status == "ERROR":
            self.errored.inc()
        elif status == "FILTERED":
            self.filtered.inc()


class ObservedStore:
    """A channel's view of the store that counts what it records (everything else passes)."""

    def __init__(self, store: Any, metrics: ChannelMetrics) -> None:
        self._store = store
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def received(self, channel: str, raw: bytes, **fields: Any) -> int:
        message_id: int = await self._store.received(channel, raw, **fields)
        m = self._metrics
        m.received.inc()
        if fields.get("status", "RECEIVED") == "ERROR":
            m.errored.inc()
        elif len(m.started) < 1_000_000:
            m.started[message_id] = time.monotonic()
        return message_id

    async def accepted(self, channel: str, raw: bytes, **fields: Any) -> int:
        message_id: int = await self._store.accepted(channel, raw, **fields)
        self._metrics.received.inc()
        self._count_outcome(message_id, fields["status"], fields.get("routes") or [])
        return message_id

    async def processed(self, message_id: int, status: str, **kwargs: Any) -> Any:
        result = await self._store.processed(message_id, status, **kwargs)
        self._count_outcome(message_id, status, kwargs.get("routes") or [])
        return result

    def _count_outcome(self, message_id: int, status: str, routes: Any) -> None:
        """A pipeline outcome: final unless some destination has the message queued."""
        queued = any(getattr(r, "content", None) is not None and getattr(r, "filtered", 1) is None
                     for r in routes)
        if status in ("ERROR", "FILTERED") or not queued:
            final = status if status in ("ERROR", "FILTERED") else (
                "FILTERED" if routes else "TRANSFORMED")
            self._metrics.finished(message_id, final)
        elif len(self._metrics.started) < 1_000_000:
            self._metrics.started.setdefault(message_id, time.monotonic())

    async def attempt_failed(self, message_id: int, destination: str, *args: Any,
                             **kwargs: Any) -> Any:
        self._metrics.attempt_failed(destination)
        return await self._store.attempt_failed(message_id, destination, *args, **kwargs)

    async def delivered(self, message_id: int, destination: str, status: str,
                        **kwargs: Any) -> Any:
        final = await self._store.delivered(message_id, destination, status, **kwargs)
        self._metrics.delivered(destination, status)
        if final in ("SENT", "ERROR"):
            self._metrics.finished(message_id, final)
        return final


class EngineCollector(Collector):
    """Gauges read at scrape time: queue depths, breaker states, channel states."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("conduit_queue_depth", "Envelopes waiting in a queue.",
                                  labels=["channel", "queue"])
        breaker = GaugeMetricFamily("conduit_breaker_state",
                                    "Breaker per destination: 0 closed, 1 half-open, 2 open.",
                                    labels=["channel", "destination"])
        state = GaugeMetricFamily("conduit_channel_up",
                                  "1 when the channel is started, 0 when paused or stopped.",
                                  labels=["channel", "state"])
        from conduit.engine.control import queue_depths

        control = getattr(self.engine, "control", None)
        for name, runtime in list(self.engine.runtimes.items()):
            for queue, waiting in queue_depths(self.engine, name).items():
                if waiting is not None:
                    depth.add_metric([name, queue], waiting)
            for destination, position in breaker_states(runtime).items():
                breaker.add_metric([name, destination], BREAKER_VALUE.get(position, 0))
            now = control.state(name) if control is not None else "started"
            state.add_metric([name, now], 1 if now == "started" else 0)
        yield depth
        yield breaker
        yield state


def breaker_states(runtime: Any) -> dict[str, str]:
    """Breaker state per destination (``closed``, ``open``, ``half-open``) of those with one."""
    reader = getattr(runtime, "breaker_state", None)
    if reader is None:
        return {}
    result = {}
    for config in runtime.channel.destinations:
        try:
            value = reader(config.name)
        except Exception:
            continue
        if value is not None:
            result[config.name] = str(value).replace("_", "-")
    return result


def close_breaker(runtime: Any, destination: str) -> bool:
    """Close a destination's breaker; False when it has none (KeyError: no such destination)."""
    workers = getattr(runtime, "workers_by_destination", {})
    if destination not in workers:
        raise KeyError(destination)
    breaker = getattr(workers[destination], "breaker", None)
    if breaker is None:
        return False
    reset = getattr(breaker, "reset", None)
    if reset is not None:
        reset()
    else:
        breaker._breaker.close()
    return True
