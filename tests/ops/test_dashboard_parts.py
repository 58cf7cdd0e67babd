"""The dashboard's parts below the pages: the stage diff, the delivery queries (on both stores)
and the charts' series."""

from __future__ import annotations

import asyncio

from conduit.ops.charts import series
from conduit.ops.deliveries import failed_destinations, open_counts
from conduit.ops.hl7diff import diff
from conduit.ops.sampler import Point
from conduit.store import Store
from conduit.store.store import Route

RAW = (b"MSH|^~\\&|REG|HOSP|ADT|HOSP|20260101||ADT^A01|C1|P|2.5\r"
       b"PID|1||P1^^^H^MR||DOE^JANE\rNTE|1||old note\rPV1|1|I\r")


def test_diff_marks_the_changed_fields_and_whole_added_or_removed_segments() -> None:
    after = (b"MSH|^~\\&|REG|HOSP|ADT|HOSP|20260101||ADT^A01|C1|P|2.5\r"
             b"PID|1||P1^^^H^MR||DOE^JANE^Q\rZPI|1|extra\rPV1|1|O\r")
    rows = diff("Raw → Transformed", RAW, after).rows
    assert [r.op for r in rows] == ["same", "changed", "removed", "added", "changed"]
    pid = rows[1]
    assert [c.text for c in pid.before if c.changed] == ["DOE^JANE"]
    assert [c.text for c in pid.after if c.changed] == ["DOE^JANE^Q"]
    assert rows[2].before[0].text == "NTE" and all(c.changed for c in rows[2].before)
    assert rows[3].after[0].text == "ZPI" and rows[3].before == []
    assert [c.text for c in rows[4].after if c.changed] == ["O"]


def test_diff_of_equal_messages_changes_nothing_and_longer_segments_mark_the_tail() -> None:
    assert not diff("same", RAW, RAW.replace(b"\r", b"\r\n")).changed
    longer = diff("x", b"MSH|^~\\&|A\rPV1|1|I\r", b"MSH|^~\\&|A\rPV1|1|I||X\r").rows[1]
    assert [c.text for c in longer.after if c.changed] == ["", "X"]
    assert not any(c.changed for c in longer.before)


def test_failed_destinations_and_open_deliveries(store_url: str) -> None:
    store = Store(store_url)
    store.migrate()

    async def scenario() -> tuple[int, int, int]:
        ids = []
        for n in range(3):
            mid = await store.received("adt", RAW, control_id=f"C{n}", message_type="ADT^A01")
            await store.processed(mid, "TRANSFORMED", transformed=RAW, error=None,
                                  routes=[Route("archive", RAW), Route("lis", RAW)])
            ids.append(mid)
        # 0: both sent; 1: lis failed (message ERROR); 2: lis failed, archive still waiting
        for destination in ("archive", "lis"):
            await store.delivered(ids[0], destination, "SENT", attempts=1, response=None,
                                  error=None)
        await store.delivered(ids[1], "archive", "SENT", attempts=1, response=None, error=None)
        await store.delivered(ids[1], "lis", "ERROR", attempts=3, response=None,
                              error="ConnectionRefusedError")
        await store.delivered(ids[2], "lis", "ERROR", attempts=3, response=None, error=None)
        other = await store.received("lab", RAW, control_id="L1", message_type="ORU^R01")
        await store.processed(other, "TRANSFORMED", transformed=RAW, error=None,
                              routes=[Route("lis", RAW)])
        await store.close()
        return ids[0], ids[1], ids[2]

    sent, failed, pending = asyncio.run(scenario())
    assert store.get(failed).status == "ERROR"  # type: ignore[union-attr]
    assert store.get(pending).status == "ERROR"  # type: ignore[union-attr]  # one failed
    assert failed_destinations(store.engine, [sent, failed, pending]) == {
        failed: [("lis", "ConnectionRefusedError")], pending: [("lis", "failed")]}
    assert failed_destinations(store.engine, []) == {}
    assert open_counts(store.engine, "adt") == {"lis": {"ERROR": 2},
                                                "archive": {"QUEUED": 1}}
    assert open_counts(store.engine, "lab") == {"lis": {"QUEUED": 1}}
    store.engine.dispose()


def test_chart_series_are_per_minute_rates_and_depths() -> None:
    points = [
        Point(100.0, {"adt": {"received": 10, "sent": 8, "filtered": 0, "errored": 1}},
              {"adt": {"archive": {"SENT": 8}, "lis": {"ERROR": 1}}},
              {"adt": {"conduit.adt.source": 0, "conduit.adt.dest.archive": 2,
                       "conduit.adt.dlq": 50}}),
        Point(102.0, {"adt": {"received": 14, "sent": 10, "filtered": 1, "errored": 1}},
              {"adt": {"archive": {"SENT": 10}, "lis": {"ERROR": 3}}},
              {"adt": {"conduit.adt.source": 1, "conduit.adt.dest.archive": 3,
                       "conduit.adt.dest.lis": None, "conduit.adt.dlq": 50}}),
    ]
    result = series(points, {"adt": ["archive", "lis"]})
    assert result["t"] == [102.0]
    adt = result["channels"]["adt"]
    assert adt["received"] == [120.0] and adt["sent"] == [60.0] and adt["filtered"] == [30.0]
    assert adt["errored"] == [0.0]
    assert adt["queued"] == [None]  # a queue whose depth is unknown: no made-up total
    assert adt["destinations"]["archive"] == {"sent": [60.0], "failed": [0.0], "queued": [3]}
    assert adt["destinations"]["lis"] == {"sent": [0.0], "failed": [60.0], "queued": [None]}
    assert series(points[:1], {"adt": ["archive"]})["t"] == []


def test_a_message_ends_in_error_once_however_many_deliveries_report_it() -> None:
    """The store answers ERROR after every delivery of a message that has a failed one: the
    failed destination first, then the one that sent; then two failing destinations."""
    from conduit.ops.metrics import Metrics

    metrics = Metrics()
    metrics.received("adt", 1, "RECEIVED")
    metrics.processed("adt", 1, "QUEUED")
    metrics.delivered("adt", "broken", 1, "ERROR", "ERROR")
    metrics.delivered("adt", "archive", 1, "SENT", "ERROR")
    metrics.received("adt", 2, "RECEIVED")
    metrics.processed("adt", 2, "QUEUED")
    metrics.delivered("adt", "broken", 2, "ERROR", "ERROR")
    metrics.delivered("adt", "lis", 2, "ERROR", "ERROR")
    metrics.received("adt", 3, "RECEIVED")
    metrics.processed("adt", 3, "QUEUED")
    metrics.delivered("adt", "archive", 3, "SENT", "QUEUED")
    metrics.delivered("adt", "lis", 3, "SENT", "SENT")
    m = metrics.channel("adt")
    assert (m.errored._value.get(), m.sent._value.get()) == (2, 1)
    # message 1 reprocessed to the broken destination, which now takes it: it is sent
    metrics.delivered("adt", "broken", 1, "SENT", "SENT")
    assert (m.errored._value.get(), m.sent._value.get()) == (2, 2)


def test_the_older_link_of_a_full_text_search_keeps_the_words() -> None:
    """The messages page reads full text as ``q``; its Older/Newest links must send it so."""
    from conduit.ops.operations import Filters

    link = Filters(channel="adt", text="chest pain", before=7).clean().params(before=3)
    assert link == {"channel": "adt", "q": "chest pain", "before": 3}


def test_stale_counts_are_answered_at_once_and_counted_again_behind() -> None:
    """A million messages take PostgreSQL 0.2-0.6 s to count: a refresh past the cache's
    moment answers the last counts at once and a thread counts again; none, or very old,
    are counted before answering."""
    import threading
    import time
    from types import SimpleNamespace

    from conduit.ops import api_channels

    release = threading.Event()
    calls: list[float] = []

    class SlowStore:
        def counts(self) -> dict[str, dict[str, int]]:
            calls.append(time.monotonic())
            if len(calls) > 1:
                release.wait(5)
            return {"adt": {"SENT": len(calls)}}

    web = SimpleNamespace(extras={}, engine=SimpleNamespace(store=SlowStore()))
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(web=web)))
    assert api_channels.store_counts(request) == {"adt": {"SENT": 1}}  # none yet: counted now
    web.extras["counts"] = (time.monotonic() - api_channels.COUNTS_TTL - 1,
                            web.extras["counts"][1])
    began = time.monotonic()
    assert api_channels.store_counts(request) == {"adt": {"SENT": 1}}  # stale: answered as is
    assert api_channels.store_counts(request) == {"adt": {"SENT": 1}}  # one recount at a time
    assert time.monotonic() - began < 0.5
    release.set()
    deadline = time.monotonic() + 5
    while "counting" in web.extras and time.monotonic() < deadline:
        time.sleep(0.01)
    assert api_channels.store_counts(request) == {"adt": {"SENT": 2}} and len(calls) == 2
    web.extras["counts"] = (time.monotonic() - api_channels.COUNTS_STALE_MAX - 1, {})
    assert api_channels.store_counts(request) == {"adt": {"SENT": 3}}  # too old: counted now
