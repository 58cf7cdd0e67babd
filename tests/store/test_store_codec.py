"""Stored content formats: plain, deflate, the HL7 dictionary, deltas and copies."""

from __future__ import annotations

import asyncio
import zlib

import pytest
from sqlalchemy import select

from conduit.store import Store, replay
from conduit.store.codec import (
    DEFLATE,
    DELTA,
    HL7,
    HL7_DELTA,
    PLAIN,
    RAW_COPY,
    TRANSFORMED_COPY,
    needs_raw,
    needs_transformed,
    pack,
    unpack,
)
from conduit.store.store import Route
from conduit.store.tables import deliveries
from tests.samples import ADT_A01

RAW = ADT_A01.encode()
ACK = (b"MSH|^~\\&|RECV|HOSP|SEND|FAC|20260101083001||ACK^A01^ACK|ACK1|P|2.5\r"
       b"MSA|AA|" + RAW.split(b"\r")[0].split(b"|")[9] + b"\r")


@pytest.mark.parametrize("content", [
    RAW.replace(b"ADT^A01", b"ADT^A08"), RAW[::-1], b"", b"x", RAW * 60,
    bytes(range(256)) * 3])
def test_delta_round_trips(content: bytes) -> None:
    stored = pack(content, RAW)
    assert stored is not None and stored[:1] == DELTA and needs_raw(stored)
    assert unpack(stored, RAW) == content


def test_a_near_copy_takes_a_few_bytes_and_needs_its_base() -> None:
    stored = pack(RAW.replace(b"ADT^A01", b"ADT^A08"), RAW)
    assert stored is not None and len(stored) < 40 < len(pack(RAW) or b"")
    with pytest.raises(ValueError, match="delta"):
        unpack(stored)


def test_copies_take_one_byte() -> None:
    transformed = RAW.replace(b"ADT^A01", b"ADT^A08")
    assert pack(RAW, RAW) == RAW_COPY and unpack(RAW_COPY, RAW) == RAW
    assert pack(transformed, RAW, transformed=transformed) == TRANSFORMED_COPY
    assert pack(transformed, None, transformed=transformed) == TRANSFORMED_COPY
    assert needs_transformed(TRANSFORMED_COPY) and not needs_raw(TRANSFORMED_COPY)
    assert unpack(TRANSFORMED_COPY, RAW, transformed=transformed) == transformed
    with pytest.raises(ValueError, match="transformed"):
        unpack(TRANSFORMED_COPY, RAW)


def test_hl7_is_primed_with_a_dictionary_and_replies_with_their_message() -> None:
    plain = zlib.compressobj(6, zlib.DEFLATED, -15)
    deflated = plain.compress(RAW) + plain.flush()
    stored = pack(RAW)
    assert stored is not None and stored[:1] == HL7 and not needs_raw(stored)
    assert len(stored) < 0.92 * len(deflated) and unpack(stored) == RAW
    reply = pack(ACK, RAW, reply=True)
    assert reply is not None and reply[:1] == HL7_DELTA and needs_raw(reply)
    assert len(reply) < len(pack(ACK) or b"") < len(ACK) and unpack(reply, RAW) == ACK
    # the same bytes pack the same way whatever was packed before (the primed state is copied)
    assert pack(RAW) == stored and pack(b"MSH|x" * 100) != pack(b"MSH|y" * 100)


def test_without_a_base_content_is_plain_or_deflate() -> None:
    assert not needs_raw(pack(b"ACK")) and unpack(pack(b"ACK")) == b"ACK"
    assert (pack(b"ACK") or b"")[:1] == PLAIN
    text = b"lorem ipsum dolor sit amet " * 40
    assert (pack(text) or b"")[:1] == DEFLATE and unpack(pack(text)) == text
    noise = bytes(range(256))
    assert (pack(noise) or b"")[:1] == PLAIN and unpack(pack(noise)) == noise
    assert unpack(pack(RAW)) == RAW and unpack(pack(RAW * 100)) == RAW * 100
    assert pack(None, RAW) is None and unpack(None) is None and not needs_raw(None)


def test_formats_of_older_stores_still_read() -> None:
    """What earlier versions wrote (deflate without a dictionary, deltas at any window)."""
    old = zlib.compressobj(6, zlib.DEFLATED, -11, 4)
    assert unpack(DEFLATE + old.compress(RAW) + old.flush()) == RAW
    transformed = RAW.replace(b"ADT^A01", b"ADT^A08")
    delta = zlib.compressobj(6, zlib.DEFLATED, -15, 8, zdict=RAW)
    assert unpack(DELTA + delta.compress(transformed) + delta.flush(), RAW) == transformed


def test_store_reads_deltas_back_everywhere(store_url: str) -> None:
    """get, queued, requeue and replay all see the content, not the delta."""
    store = Store(store_url)
    store.migrate()
    transformed = RAW.replace(b"ADT^A01", b"ADT^A08")

    async def scenario() -> None:
        mid = await store.received("delta", RAW, control_id="C1", message_type="ADT^A01")
        await store.processed(mid, "TRANSFORMED", transformed=transformed, error=None,
                              routes=[Route("a", transformed), Route("b", RAW + b"b"),
                                      Route("c", RAW)], raw=RAW)
        record = store.get(mid)
        assert record is not None and record.raw == RAW and record.transformed == transformed
        assert [(d.destination, d.content) for d in record.deliveries] == [
            ("a", transformed), ("b", RAW + b"b"), ("c", RAW)]
        expected = [(mid, "a", transformed), (mid, "b", RAW + b"b"), (mid, "c", RAW)]
        assert store.pending("delta") == ([], {"a": [mid], "b": [mid], "c": [mid]})
        assert [(mid, d, store.queued("delta", d, [mid])[0][1]) for d in "abc"] == expected
        _, queued = await asyncio.to_thread(replay.pending_for, store, [mid])
        assert sorted(queued) == expected
        await store.delivered(mid, "a", "SENT", attempts=1, response=ACK, error=None)
        await store.delivered(mid, "c", "SENT", attempts=1, response=b"", error=None)
        record = store.get(mid)
        assert record is not None
        assert [d.response for d in record.deliveries] == [ACK, None, b""]
        assert sorted(await store.requeue(mid, ["a"], "again")) == [("a", transformed)]
        again = await replay.requeue(store, mid, destinations=("b",))
        assert again is not None and again.deliveries == [("b", RAW + b"b")]
        again = await replay.requeue(store, mid, destinations=("c",))
        assert again is not None and again.deliveries == [("c", RAW)]
        await store.close()

    asyncio.run(scenario())


def test_a_reply_without_its_raw_at_hand_is_stored_alone(store_url: str) -> None:
    """Another process (or a restart) delivering: no raw in memory, the reply packs alone."""
    store = Store(store_url)
    store.migrate()

    async def scenario() -> None:
        mid = await store.received("r", RAW, control_id="C1", message_type="ADT^A01")
        await store.processed(mid, "TRANSFORMED", transformed=RAW, error=None,
                              routes=[Route("a", RAW)], raw=RAW)
        await store.close()
        other = Store(store_url)
        assert await other.delivered(mid, "a", "SENT", attempts=1, response=ACK,
                                     error=None) == "SENT"
        record = other.get(mid)
        assert record is not None and record.deliveries[0].response == ACK
        assert record.transformed == RAW and record.deliveries[0].content == RAW
        await other.close()

    asyncio.run(scenario())


def test_an_empty_reply_is_stored_as_one_byte(store_url: str) -> None:
    """A file destination answers nothing: no delta against the raw message is set up for it
    (nor the raw message sent to the writer for one); it reads back without the raw."""
    store = Store(store_url)
    store.migrate()

    async def scenario() -> None:
        mid = await store.received("e", RAW, control_id="C1", message_type="ADT^A01")
        await store.processed(mid, "TRANSFORMED", transformed=RAW, error=None,
                              routes=[Route("a", RAW)], raw=RAW)
        await store.delivered(mid, "a", "SENT", attempts=1, response=b"", error=None)
        with store.engine.connect() as connection:
            stored = connection.execute(select(deliveries.c.response)).scalar_one()
        assert bytes(stored) == PLAIN and not needs_raw(stored)
        record = store.get(mid)
        assert record is not None and record.deliveries[0].response == b""
        await store.close()

    asyncio.run(scenario())
