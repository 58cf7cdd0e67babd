"""Live throughput: counters sampled every few seconds into a short ring buffer (in memory).

Gives the dashboard's messages/s per channel, the recent minutes for alerts and the charts of
the last hour (:meth:`Sampler.history`: counters per channel and destination, queue depths); the
long history of statistics comes from the store (:mod:`conduit.ops.stats`).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conduit.engine.services import Periodic
from conduit.ops.metrics import Metrics

KEYS = ("received", "filtered", "sent", "errored")


def _value(counter: Any) -> float:
    return float(counter._value.get())


#: Reads every channel's queue depths: channel -> queue -> envelopes waiting (None: unknown).
Depths = Callable[[], dict[str, dict[str, int | None]]]


@dataclass(slots=True)
class Point:
    """One sample for the charts: wall-clock time, cumulative counters, queue depths."""

    at: float
    counters: dict[str, dict[str, float]]
    #: channel -> destination -> {"SENT": n, "ERROR": n} (cumulative)
    destinations: dict[str, dict[str, dict[str, float]]]
    depths: dict[str, dict[str, int | None]] = field(default_factory=dict)


class Sampler(Periodic):
    """Samples the metrics' counters every ``interval`` seconds (a service of the engine)."""

    def __init__(self, metrics: Metrics, interval: float = 2.0, keep: float = 3600.0,
                 depths: Depths | None = None) -> None:
        super().__init__("sampler", interval, self.sample)
        self.metrics = metrics
        self.interval = interval
        self.depths = depths
        self.samples: deque[tuple[float, dict[str, dict[str, float]]]] = deque(
            maxlen=int(keep / interval) + 1)
        self.history: deque[Point] = deque(maxlen=int(keep / interval) + 1)

    def snapshot(self) -> dict[str, dict[str, float]]:
        result: dict[str, dict[str, float]] = {}
        for name, m in list(self.metrics.channels.items()):
            result[name] = {"received": _value(m.received), "filtered": _value(m.filtered),
                            "sent": _value(m.sent), "errored": _value(m.errored)}
        return result

    async def sample(self) -> None:
        values = self.snapshot()
        self.samples.append((time.monotonic(), values))
        destinations = {name: m.destination_totals()
                        for name, m in list(self.metrics.channels.items())}
        # a broker's depth is a network call: off the event loop
        depths = await asyncio.to_thread(self.depths) if self.depths else {}
        self.history.append(Point(time.time(), values, destinations, depths))

    def delta(self, channel: str, key: str, seconds: float) -> float:
        """How much counter ``key`` of ``channel`` grew over the last ``seconds``."""
        if not self.samples:
            return 0.0
        clock = time.monotonic()
        current = self.snapshot().get(channel, {}).get(key, 0.0)
        base = None
        for stamp, values in self.samples:
            if clock - stamp <= seconds:
                base = values.get(channel, {}).get(key, 0.0)
                break
        if base is None:
            base = self.samples[-1][1].get(channel, {}).get(key, 0.0)
        return max(0.0, current - base)

    def rate(self, channel: str, key: str = "received", seconds: float = 10.0) -> float:
        """Per second over about the last ``seconds``."""
        if not self.samples:
            return 0.0
        clock = time.monotonic()
        for stamp, values in self.samples:
            if clock - stamp <= seconds:
                elapsed = clock - stamp
                if elapsed <= 0:
                    return 0.0
                base = values.get(channel, {}).get(key, 0.0)
                current = self.snapshot().get(channel, {}).get(key, 0.0)
                return max(0.0, current - base) / elapsed
        return 0.0

    def idle_for(self, channel: str) -> float:
        """Seconds since ``channel`` last received (as far back as the samples go)."""
        clock = time.monotonic()
        current = self.snapshot().get(channel, {}).get("received", 0.0)
        for stamp, values in reversed(self.samples):
            if values.get(channel, {}).get("received", 0.0) != current:
                return clock - stamp
        oldest = self.samples[0][0] if self.samples else clock
        return clock - oldest
