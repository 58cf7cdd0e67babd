"""Measure the message browser's queries over many synthetic messages (not part of the suite).

    .venv/bin/python -m tests.ops.measure_browser sqlite:///data/million.db 1000000
    .venv/bin/python -m tests.ops.measure_browser postgresql://postgres@127.0.0.1/x 1000000
"""

from __future__ import annotations

import random
import sys
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from conduit.store import Store
from conduit.store.codec import pack
from conduit.store.fulltext import Indexer
from conduit.store.tables import messages

FAMILY = ["SMITH", "JONES", "GARCIA", "MILLER", "DAVIS", "LOPEZ", "WILSON", "TAYLOR", "MOORE",
          "CLARK", "LEWIS", "WALKER", "HALL", "YOUNG", "KING", "WRIGHT", "SCOTT", "GREEN"]
GIVEN = ["ANNA", "JOHN", "MARIA", "DAVID", "LINDA", "JAMES", "SARA", "PAUL", "EMMA", "OMAR"]
TYPES = ["ADT^A01", "ADT^A04", "ADT^A08", "ADT^A03", "ORU^R01", "ORM^O01", "SIU^S12"]
CHANNELS = ["adt-in", "lab-results", "orders", "scheduling"]
STATUSES = ["SENT"] * 90 + ["FILTERED"] * 6 + ["ERROR"] * 3 + ["QUEUED"]


def message(i: int, rng: random.Random) -> tuple[bytes, str, str]:
    kind = rng.choice(TYPES)
    patient = f"P{rng.randrange(200_000):07d}"
    raw = (f"MSH|^~\\&|SEND|HOSP|RECV|HOSP|20260101120000||{kind}|MSG{i:09d}|P|2.5\r"
           f"EVN|{kind[-3:]}|20260101120000\r"
           f"PID|1||{patient}^^^HOSP^MR||{rng.choice(FAMILY)}^{rng.choice(GIVEN)}||"
           f"19{rng.randrange(30, 99)}0101|{rng.choice('MF')}|||{rng.randrange(1, 999)} Main St"
           f"^^Springfield^ST^{rng.randrange(10000, 99999)}\r"
           f"PV1|1|I|WARD{rng.randrange(1, 40)}^{rng.randrange(100, 400)}^1\r").encode()
    return raw, kind, patient


def fill(store: Store, count: int) -> None:
    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(days=30)
    step = timedelta(days=30) / count
    rows = []
    began = time.perf_counter()
    for i in range(count):
        raw, kind, patient = message(i, rng)
        at = start + step * i
        rows.append({"channel": rng.choice(CHANNELS), "received_at": at, "updated_at": at,
                     "status": rng.choice(STATUSES), "control_id": f"MSG{i:09d}",
                     "message_type": kind, "patient_id": patient, "source": "10.0.0.1",
                     "raw": pack(raw), "transformed": None, "error": None})
        if len(rows) == 20_000:
            with store.engine.begin() as connection:
                connection.execute(messages.insert(), rows)
            rows.clear()
    if rows:
        with store.engine.begin() as connection:
            connection.execute(messages.insert(), rows)
    print(f"inserted {count:,} in {time.perf_counter() - began:.1f}s")


def timed(label: str, call, repeat: int = 3) -> None:  # type: ignore[no-untyped-def]
    best = float("inf")
    found = 0
    for _ in range(repeat):
        began = time.perf_counter()
        found = len(call())
        best = min(best, time.perf_counter() - began)
    print(f"{label:55s} {best * 1000:8.1f} ms  ({found} rows)")


def main() -> None:
    url, count = sys.argv[1], int(sys.argv[2])
    store = Store(url)
    store.migrate()
    with store.engine.connect() as connection:
        have = connection.execute(text("SELECT count(*) FROM messages")).scalar() or 0
    if have < count:
        fill(store, count - have)
    began = time.perf_counter()
    indexed = Indexer(store.engine, batch=5000).run()
    print(f"indexed {indexed:,} in {time.perf_counter() - began:.1f}s")
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM ANALYZE"))
    else:
        with store.engine.connect() as c:
            c.execute(text("ANALYZE"))
    week = datetime.now(UTC) - timedelta(days=7)
    day_ago = datetime.now(UTC) - timedelta(days=1)
    timed("newest 50", lambda: store.search(limit=50))
    timed("channel", lambda: store.search(channel="orders"))
    timed("status ERROR", lambda: store.search(status="ERROR"))
    timed("status QUEUED (rare)", lambda: store.search(status="QUEUED"))
    timed("channel + status", lambda: store.search(channel="orders", status="ERROR"))
    timed("type ORU", lambda: store.search(message_type="ORU"))
    timed("type SIU^S12 + channel", lambda: store.search(message_type="SIU^S12",
                                                          channel="scheduling"))
    timed("time range (last day)", lambda: store.search(since=day_ago))
    timed("time range (a day a week ago)", lambda: store.search(
        since=week, until=week + timedelta(days=1)))
    timed("MSH-10", lambda: store.search(control_id="MSG000500000"))
    timed("patient id", lambda: store.search(patient_id="P0123456"))
    timed("full text: one rare word (patient id)", lambda: store.search(text="P0123456"))
    timed("full text: two words", lambda: store.search(text="garcia emma"))
    timed("full text: common word", lambda: store.search(text="springfield"))
    timed("full text + channel + status", lambda: store.search(
        text="wilson", channel="lab-results", status="ERROR"))
    timed("page 20 via before_id", lambda: store.search(before_id=count - 1000))
    timed("counts per channel and status", lambda: list(store.counts().items()))


if __name__ == "__main__":
    main()
