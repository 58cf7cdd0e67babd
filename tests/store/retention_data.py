"""Old and new messages written straight into a store, for the retention tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conduit.store import Store
from conduit.store.codec import pack
from conduit.store.tables import deliveries, events, messages


def fill(store: Store, per_kind: int = 30) -> None:
    """For channels adt and lab: old and new messages in SENT, FILTERED, QUEUED and ERROR,
    each with a delivery and an event; old = 40 days, new = 1 hour."""
    rows = []
    now = datetime.now(UTC)
    for channel in ("adt", "lab"):
        for status in ("SENT", "FILTERED", "QUEUED", "ERROR"):
            for age, label in ((timedelta(days=40), "old"), (timedelta(hours=1), "new")):
                for i in range(per_kind):
                    raw = (f"MSH|^~\\&|A|B|C|D|20260101||ADT^A01|{channel}-{status}-{label}-{i}"
                           f"|P|2.5\rPID|1||P{i}^^^H^MR||{label.upper()}NAME^{status}\r"
                           + "OBX|1|TX|NOTE||" + "padding text " * 40 + "\r").encode()
                    rows.append({"channel": channel, "received_at": now - age,
                                 "updated_at": now - age, "status": status,
                                 "control_id": f"{channel}-{status}-{label}-{i}",
                                 "message_type": "ADT^A01", "patient_id": f"P{i}",
                                 "source": None, "raw": pack(raw), "transformed": pack(raw),
                                 "error": None})
    with store.engine.begin() as connection:
        connection.execute(messages.insert(), rows)
        ids = [r[0] for r in connection.execute(messages.select().with_only_columns(
            messages.c.id))]
        connection.execute(deliveries.insert(), [
            {"message_id": i, "destination": "out", "status": "SENT", "content": pack(b"x" * 500),
             "attempts": 1, "updated_at": now} for i in ids])
        connection.execute(events.insert(), [
            {"message_id": i, "at": now, "kind": "note", "detail": None} for i in ids])
