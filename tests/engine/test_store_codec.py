"""Stored content formats: plain, deflate, and deltas against the raw message."""

from __future__ import annotations

import asyncio

import pytest

from conduit.engine.store import Store, replay
from conduit.engine.store.codec import DELTA, is_delta, pack, unpack
from conduit.engine.store.store import Route
from tests.samples import ADT_A01

RAW = ADT_A01.encode()


@pytest.mark.parametrize("content", [
    RAW, RAW.replace(b"ADT^A01", b"ADT^A08"), RAW[::-1], b"", b"x", RAW * 60,
    bytes(range(256)) * 3])
def test_delta_round_trips(content: bytes) -> None:
    stored = pack(content, RAW)
    assert stored is not None and stored[:1] == DELTA and is_delta(stored)
    assert unpack(stored, RAW) == content


def test_a_near_copy_takes_a_few_bytes_and_needs_its_base() -> None:
    stored = pack(RAW.replace(b"ADT^A01", b"ADT^A08"), RAW)
    assert stored is not None and len(stored) < 40 < len(pack(RAW) or b"")
    with pytest.raises(ValueError, match="delta"):
        unpack(stored)


def test_without_a_base_content_is_plain_or_deflate() -> None:
    assert not is_delta(pack(b"ACK")) and unpack(pack(b"ACK")) == b"ACK"
    assert not is_delta(pack(RAW)) and unpack(pack(RAW)) == RAW
    assert pack(None, RAW) is None and unpack(None) is None and not is_delta(None)


def test_store_reads_deltas_back_everywhere(store_url: str) -> None:
    """get, pending_deliveries, requeue and replay all see the content, not the delta."""
    store = Store(store_url)
    store.migrate()
    transformed = RAW.replace(b"ADT^A01", b"ADT^A08")

    async def scenario() -> None:
        mid = await store.received("delta", RAW, control_id="C1", message_type="ADT^A01")
        await store.processed(mid, "TRANSFORMED", transformed=transformed, error=None,
                              routes=[Route("a", transformed), Route("b", RAW + b"b")], raw=RAW)
        record = store.get(mid)
        assert record is not None and record.raw == RAW and record.transformed == transformed
        assert {d.destination: d.content for d in record.deliveries} == {
            "a": transformed, "b": RAW + b"b"}
        assert sorted(store.pending_deliveries("delta")) == [
            (mid, "a", transformed), (mid, "b", RAW + b"b")]
        _, queued = await asyncio.to_thread(replay.pending_for, store, [mid])
        assert sorted(queued) == [(mid, "a", transformed), (mid, "b", RAW + b"b")]
        await store.delivered(mid, "a", "SENT", attempts=1, response=None, error=None)
        assert sorted(await store.requeue(mid, ["a"], "again")) == [("a", transformed)]
        again = await replay.requeue(store, mid, destinations=("b",))
        assert again is not None and again.deliveries == [("b", RAW + b"b")]
        await store.close()

    asyncio.run(scenario())
