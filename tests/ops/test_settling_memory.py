"""Per-message structures are released (issue 16, item 5): end-to-end start times are kept
only where the message settles, and never without bound."""

from __future__ import annotations

import pytest

from conduit.ops import metrics as metrics_module
from conduit.ops.metrics import Metrics


def test_a_listeners_only_process_keeps_no_start_times() -> None:
    """Messages queued to another process never settle here: nothing is kept for them."""
    metrics = Metrics()
    for message_id in range(10_000):
        metrics.received("adt", message_id, "RECEIVED")
    assert metrics.channel("adt").started == {}


def test_start_times_where_the_pipeline_runs_settle_and_are_released() -> None:
    metrics = Metrics()
    for message_id in range(100):
        metrics.received("adt", message_id, "RECEIVED")
        metrics.processed("adt", message_id, "QUEUED")
    assert len(metrics.channel("adt").started) == 100
    for message_id in range(100):
        metrics.delivered("adt", "out", message_id, "SENT", "SENT")
    assert metrics.channel("adt").started == {}
    assert metrics.end_to_end.labels("adt")._sum.get() > 0


def test_start_times_are_bounded_by_count_and_age(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_module, "STARTED_MAX", 50)
    metrics = Metrics()
    for message_id in range(1000):  # settled by another process: never popped here
        metrics.processed("adt", message_id, "QUEUED")
    started = metrics.channel("adt").started
    assert len(started) == 50 and min(started) == 950
    clock = [1000.0]
    monkeypatch.setattr(metrics_module.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(metrics_module, "STARTED_MAX", 10_000)
    fresh = Metrics()
    for message_id in range(20):
        fresh.processed("lab", message_id, "QUEUED")
    clock[0] += metrics_module.STARTED_TTL + 1
    for message_id in range(20, 60):  # each new entry retires one that outlived the TTL
        fresh.processed("lab", message_id, "QUEUED")
    assert min(fresh.channel("lab").started) == 20
