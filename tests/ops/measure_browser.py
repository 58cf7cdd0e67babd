"""Measure the message browser's queries over many synthetic messages (not part of the suite).

    .venv/bin/python -m tests.ops.measure_browser sqlite:///data/million.db 1000000
    .venv/bin/python -m tests.ops.measure_browser postgresql://postgres@127.0.0.1/x 1000000
"""

from __future__ import annotations

import random
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from conduit.store import Store
from conduit.store.codec import pack
from conduit.store.fulltext import Indexer
from conduit.store.tables import messages, search_fields

FAMILY = ["SMITH", "JONES", "GARCIA", "MILLER", "DAVIS", "LOPEZ", "WILSON", "TAYLOR", "MOORE",
          "CLARK", "LEWIS", "WALKER", "HALL", "YOUNG", "KING", "WRIGHT", "SCOTT", "GREEN"]
GIVEN = ["ANNA", "JOHN", "MARIA", "DAVID", "LINDA", "JAMES", "SARA", "PAUL", "EMMA", "OMAR"]
TYPES = ["ADT^A01", "ADT^A04", "ADT^A08", "ADT^A03", "ORU^R01", "ORM^O01", "SIU^S12"]
CHANNELS = ["adt-in", "lab-results", "orders", "scheduling"]
STATUSES = ["SENT"] * 90 + ["FILTERED"] * 6 + ["ERROR"] * 3 + ["QUEUED"]


def message(i: int, rng: random.Random) -> tuple[bytes, str, str, list[tuple[str, str]]]:
    """A synthetic message (no real person), its type, patient id and the search fields intake
    would write for it (``engine.search``: PID-3.4, PID-5.1, PID-5.2 and the MRN)."""
    kind = rng.choice(TYPES)
    patient = f"P{rng.randrange(200_000):07d}"
    family, given = rng.choice(FAMILY), rng.choice(GIVEN)
    raw = (f"MSH|^~\\&|SEND|HOSP|RECV|HOSP|20260101120000||{kind}|MSG{i:09d}|P|2.5\r"
           f"EVN|{kind[-3:]}|20260101120000\r"
           f"PID|1||{patient}^^^HOSP^MR||{family}^{given}||"
           f"19{rng.randrange(30, 99)}0101|{rng.choice('MF')}|||{rng.randrange(1, 999)} Main St"
           f"^^Springfield^ST^{rng.randrange(10000, 99999)}\r"
           f"PV1|1|I|WARD{rng.randrange(1, 40)}^{rng.randrange(100, 400)}^1\r").encode()
    fields = [("PID-3.4", "HOSP"), ("PID-5.1", family), ("PID-5.2", given), ("MRN", patient)]
    return raw, kind, patient, fields


def fill(store: Store, count: int) -> None:
    """``count`` more messages over the last 30 days with their search fields, in batches of
    20,000: multi-row inserts on SQLite, COPY on PostgreSQL."""
    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(days=30)
    step = timedelta(days=30) / count
    with store.engine.connect() as connection:
        first = (connection.execute(text("SELECT max(id) FROM messages")).scalar() or 0) + 1
    rows: list[dict[str, Any]] = []
    fields: list[dict[str, Any]] = []
    began = time.perf_counter()
    for i in range(count):
        raw, kind, patient, found = message(i, rng)
        at = start + step * i
        rows.append({"id": first + i, "channel": rng.choice(CHANNELS), "received_at": at,
                     "updated_at": at, "status": rng.choice(STATUSES),
                     "control_id": f"MSG{i:09d}", "message_type": kind, "patient_id": patient,
                     "source": "10.0.0.1", "raw": pack(raw), "transformed": None, "error": None})
        fields.extend({"message_id": first + i, "name": n, "value": v} for n, v in found)
        if len(rows) == 20_000 or i == count - 1:
            _write(store, rows, fields)
            rows.clear()
            fields.clear()
    if store.engine.dialect.name == "postgresql":
        with store.engine.begin() as connection:
            connection.execute(text("SELECT setval(pg_get_serial_sequence('messages', 'id'),"
                                     " (SELECT max(id) FROM messages))"))
    print(f"inserted {count:,} in {time.perf_counter() - began:.1f}s")


def _write(store: Store, rows: list[dict[str, Any]], fields: list[dict[str, Any]]) -> None:
    if store.engine.dialect.name != "postgresql":
        with store.engine.begin() as connection:
            connection.execute(messages.insert(), rows)
            connection.execute(search_fields.insert(), fields)
        return
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        columns = list(rows[0])
        with cursor.copy(f"COPY messages ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])
        with cursor.copy("COPY search_fields (message_id, name, value) FROM STDIN") as copy:
            for field in fields:
                copy.write_row((field["message_id"], field["name"], field["value"]))
        raw.commit()
    finally:
        raw.close()


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
