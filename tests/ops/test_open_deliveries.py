"""Failed and queued deliveries read through their messages (``store.unsettled``): PostgreSQL has
no index on the deliveries' status (migration 0013, HOT outcomes), SQLite keeps one; the readers
answer the same on both, through every status a message with such a delivery passes."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect

from conduit.ops.api_ops import dead_letters
from conduit.ops.deliveries import open_counts
from conduit.store import Store
from conduit.store.replay import requeue, select_messages
from conduit.store.store import Route


def test_open_and_failed_deliveries_are_found_through_their_messages(store_url: str) -> None:
    store = Store(store_url)
    store.migrate()
    indexes = {i["name"] for i in inspect(store.engine).get_indexes("deliveries")}
    assert ("ix_deliveries_status" in indexes) == (store.engine.dialect.name == "sqlite")

    async def write() -> dict[str, int]:
        ids = {}
        for name in ("sent", "failed", "queued", "half", "filtered", "requeued"):
            ids[name] = await store.accepted(
                "lab", b"MSH|^~\\&|" + name.encode(), control_id=name, message_type="ORU^R01",
                status="TRANSFORMED", transformed=b"T", error=None,
                routes=[Route("a", b"to-a"), Route("b", b"to-b")] if name != "filtered"
                else [Route("a", None, "not for a")])
        for name in ("sent", "failed", "half", "requeued"):
            await store.delivered(ids[name], "a", "SENT", attempts=1, response=b"", error=None)
        for name in ("sent", "requeued"):
            await store.delivered(ids[name], "b", "SENT", attempts=1, response=b"", error=None)
        for name in ("failed", "half"):  # "half": its "a" was sent, "b" failed
            await store.delivered(ids[name], "b", "ERROR", attempts=3, response=None,
                                  error="refused")
        await requeue(store, ids["requeued"], destinations=["b"])  # SENT message put back
        await store.close()
        return ids

    ids = asyncio.run(write())
    assert [store.get(ids[n]).status for n in ids] == [  # type: ignore[union-attr]
        "SENT", "ERROR", "QUEUED", "ERROR", "FILTERED", "QUEUED"]

    letters = dead_letters(store.engine, None, None, 100, None)
    assert [(d["message_id"], d["destination"]) for d in letters] == [
        (ids["half"], "b"), (ids["failed"], "b")]
    assert [d["message_id"] for d in dead_letters(store.engine, "lab", "b", 1, None)] == [
        ids["half"]]
    assert [d["message_id"] for d in dead_letters(store.engine, "lab", None, 10,
                                                  ids["half"])] == [ids["failed"]]
    assert dead_letters(store.engine, "other", None, 10, None) == []
    assert dead_letters(store.engine, None, "a", 10, None) == []
    assert select_messages(store, dead_letters=True) == [ids["failed"], ids["half"]]
    assert select_messages(store, dead_letters=True, destinations=["a"]) == []
    assert select_messages(store, channel="lab", dead_letters=True, destinations=["b"]) == [
        ids["failed"], ids["half"]]
    assert store.pending("lab") == ([], {"a": [ids["queued"]],
                                          "b": [ids["queued"], ids["requeued"]]})
    assert open_counts(store.engine, "lab") == {"a": {"QUEUED": 1},
                                                "b": {"QUEUED": 2, "ERROR": 2}}
    assert open_counts(store.engine, "other") == {}
    store.engine.dispose()
