"""The metrics' hot path adds to prometheus_client's values itself: it must count exactly what
prometheus_client's own ``inc``/``observe`` would."""

from prometheus_client import generate_latest

from conduit.ops.metrics import LATENCY_BUCKETS, Metrics


def _exposition(metrics: Metrics) -> list[str]:
    return [line for line in generate_latest(metrics.registry).decode().splitlines()
            if not line.startswith("#") and "_created" not in line]


def test_hot_path_counts_as_prometheus_client_does() -> None:
    ours, theirs = Metrics(), Metrics()
    theirs.channel("adt")  # the same label children, counted below by prometheus_client
    # every bucket bound exactly (le is inclusive), between bounds, beyond the last, zero
    durations = [0.0, *LATENCY_BUCKETS, *(b * 1.5 for b in LATENCY_BUCKETS), 1000.0]
    for number, seconds in enumerate(durations, start=1):
        ours.received("adt", number, "RECEIVED")
        ours.processed("adt", number, "QUEUED")
        ours.timed("adt", "processing", seconds)
        ours.answered("adt", "AA")
        ours.timed("adt", "delivery", seconds, "out")
        ours.delivered("adt", "out", number, "SENT", "SENT")
        theirs.received_total.labels("adt").inc()
        theirs.processing.labels("adt").observe(seconds)
        theirs.acks.labels("adt", "AA").inc()
        theirs.delivery.labels("adt", "out").observe(seconds)
        theirs.deliveries.labels("adt", "out", "SENT").inc()
        theirs.sent.labels("adt").inc()
    ours.attempt_failed("adt", "out", 1)
    theirs.attempts_failed.labels("adt", "out").inc()
    ours.received("adt", 99, "ERROR")
    theirs.received_total.labels("adt").inc()
    theirs.errored.labels("adt").inc()
    mine = [line for line in _exposition(ours) if "end_to_end" not in line]
    assert mine == [line for line in _exposition(theirs) if "end_to_end" not in line]
    assert ours.channel("adt").destination_totals() == {"out": {"SENT": float(len(durations))}}
    # end to end: one observation per message sent, each in some bucket
    count = [line for line in _exposition(ours)
             if line.startswith("conduit_end_to_end_seconds_count")]
    assert count == [f'conduit_end_to_end_seconds_count{{channel="adt"}} {len(durations)}.0']
