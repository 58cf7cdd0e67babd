"""The charts' data: the sampler's recent points turned into per-minute rates and queue depths,
shaped for uPlot (one list of times, one list of values per series, ``None`` for a gap).

Rates are what the operator reads ("12 messages a minute"), so each point is the growth of a
cumulative counter since the previous point, scaled to a minute.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from conduit.ops.sampler import KEYS, Point

#: The delivery outcomes a destination's chart shows, by the metric status they count.
OUTCOMES = {"sent": "SENT", "failed": "ERROR"}


def _rate(now: float, before: float, seconds: float) -> float:
    return round(max(0.0, now - before) * 60.0 / seconds, 2) if seconds > 0 else 0.0


def _depth(depths: dict[str, int | None], prefix: str) -> int | None:
    """Envelopes waiting in ``prefix`` and its sub-queues (dead letters not counted: they no
    longer wait for anything); None if the bus cannot tell."""
    found = [v for q, v in depths.items()
             if (q == prefix or q.startswith(prefix + ".")) and not q.endswith(".dlq")]
    if not found or any(v is None for v in found):
        return None
    return sum(v for v in found if v is not None)


def series(points: list[Point], channels: dict[str, list[str]]) -> dict[str, Any]:
    """``channels``: each channel to chart with its destinations' names."""
    pairs = list(pairwise(points))
    result: dict[str, Any] = {"t": [round(b.at, 3) for _, b in pairs], "unit": "per minute",
                              "channels": {}}
    for name, destinations in channels.items():
        chart: dict[str, Any] = {key: [] for key in KEYS}
        chart["queued"] = []
        chart["destinations"] = {d: {"sent": [], "failed": [], "queued": []}
                                 for d in destinations}
        for a, b in pairs:
            seconds = b.at - a.at
            old, new = a.counters.get(name, {}), b.counters.get(name, {})
            for key in KEYS:
                chart[key].append(_rate(new.get(key, 0.0), old.get(key, 0.0), seconds))
            depths = b.depths.get(name, {})
            chart["queued"].append(_depth(depths, f"conduit.{name}") if depths else None)
            old_d, new_d = a.destinations.get(name, {}), b.destinations.get(name, {})
            for d in destinations:
                line = chart["destinations"][d]
                for label, status in OUTCOMES.items():
                    line[label].append(_rate(new_d.get(d, {}).get(status, 0.0),
                                             old_d.get(d, {}).get(status, 0.0), seconds))
                line["queued"].append(_depth(depths, f"conduit.{name}.dest.{d}")
                                      if depths else None)
        result["channels"][name] = chart
    return result
