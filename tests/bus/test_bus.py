"""The same behavioural tests for both buses: embedded, and the real local RabbitMQ."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from conduit.bus import EmbeddedBus, Envelope, make_bus
from conduit.bus.base import (
    Bus,
    DeadLetter,
    QueueSpec,
    dead_letter_queue,
    dest_queue,
    fanouts,
    source_queue,
)
from conduit.bus.rabbitmq import RabbitBus
from conduit.core.errors import UnavailableError
from conduit.engine.topology import by_message
from tests.rabbit import RABBIT_URL, delete_channel_queues, get_all, unique_channel

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["embedded", "rabbitmq"])
async def bus_and_channel(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Bus, str]]:
    channel = unique_channel()
    bus: Bus = (EmbeddedBus(redelivery_delay=0.05) if request.param == "embedded"
                else RabbitBus(RABBIT_URL, redelivery_delay=0.05))
    await bus.start()
    dlq = dead_letter_queue(channel)
    await bus.declare([QueueSpec(source_queue(channel)),
                       QueueSpec(dest_queue(channel, "out"), dead_letter=dlq),
                       QueueSpec(dest_queue(channel, "fifo"), single_active=True,
                                 dead_letter=dead_letter_queue(channel))])
    try:
        yield bus, channel
    finally:
        await bus.close()
        if request.param == "rabbitmq":
            delete_channel_queues(channel, ["source", "dest.out", "dest.fifo"])


async def until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_publish_then_consume_in_order(bus_and_channel: tuple[Bus, str]) -> None:
    bus, channel = bus_and_channel
    queue = source_queue(channel)
    await bus.publish(queue, [Envelope(i, f"m{i}".encode()) for i in range(1, 201)])
    got: list[tuple[int, bytes]] = []

    async def handler(envelope: Envelope) -> None:
        got.append((envelope.message_id, envelope.body))

    await bus.subscribe(queue, handler)
    await until(lambda: len(got) == 200)
    assert got == [(i, f"m{i}".encode()) for i in range(1, 201)]


async def test_concurrent_publishers_each_return_once_confirmed(
        bus_and_channel: tuple[Bus, str]) -> None:
    bus, channel = bus_and_channel
    queue = dest_queue(channel, "out")
    await asyncio.gather(*(bus.publish(queue, [Envelope(i, b"x")]) for i in range(2000)))
    seen: set[int] = set()

    async def handler(envelope: Envelope) -> None:
        seen.add(envelope.message_id)

    await bus.subscribe(queue, handler, concurrency=8)
    await until(lambda: len(seen) == 2000)


async def _collect(bus: Bus, *queues: str) -> dict[str, list[tuple[int, bytes, str | None]]]:
    """Subscribe to ``queues``; each one's envelopes (id, body, correlation id) as they come."""
    got: dict[str, list[tuple[int, bytes, str | None]]] = {queue: [] for queue in queues}

    def appender(seen: list[tuple[int, bytes, str | None]]) -> Any:
        async def handler(envelope: Envelope) -> None:
            seen.append((envelope.message_id, envelope.body, envelope.correlation_id))
        return handler

    for queue in queues:
        await bus.subscribe(queue, appender(got[queue]))
    return got


async def test_publish_routed_reaches_each_queue_with_its_correlation_id(
        bus_and_channel: tuple[Bus, str]) -> None:
    bus, channel = bus_and_channel
    out, fifo = dest_queue(channel, "out"), dest_queue(channel, "fifo")
    await bus.publish_routed([(out, Envelope(7, b"a", "corr-7")), (fifo, Envelope(7, b"b")),
                              (out, Envelope(8, b"c", "corr-8"))])
    got = await _collect(bus, out, fifo)
    await until(lambda: len(got[out]) == 2 and len(got[fifo]) == 1)
    assert got[out] == [(7, b"a", "corr-7"), (8, b"c", "corr-8")]
    assert got[fifo] == [(7, b"b", None)]


async def test_a_failing_handler_gets_the_envelope_again_in_place(
        bus_and_channel: tuple[Bus, str]) -> None:
    bus, channel = bus_and_channel
    queue = dest_queue(channel, "fifo")
    await bus.publish(queue, [Envelope(i, b"x") for i in range(1, 6)])
    calls: list[int] = []

    async def handler(envelope: Envelope) -> None:
        calls.append(envelope.message_id)
        if envelope.message_id == 2 and calls.count(2) < 3:
            raise RuntimeError("store down")

    await bus.subscribe(queue, handler)
    await until(lambda: 5 in calls)
    assert calls == [1, 2, 2, 2, 3, 4, 5]


async def test_dead_letters_leave_the_queue_and_the_rest_flow(
        bus_and_channel: tuple[Bus, str]) -> None:
    bus, channel = bus_and_channel
    queue = dest_queue(channel, "out")
    await bus.publish(queue, [Envelope(i, f"m{i}".encode()) for i in range(1, 6)])
    done: list[int] = []

    async def handler(envelope: Envelope) -> None:
        if envelope.message_id == 3:
            raise DeadLetter
        done.append(envelope.message_id)

    await bus.subscribe(queue, handler)
    await until(lambda: len(done) == 4)
    assert done == [1, 2, 4, 5]
    if isinstance(bus, EmbeddedBus):
        assert bus.depth(dead_letter_queue(channel)) == 1
    else:
        await until(lambda: bool(get_all(dead_letter_queue(channel)) or []), 5)


async def test_operations_are_counted(bus_and_channel: tuple[Bus, str]) -> None:
    """Publishes, deliveries (a retry in place is not another), acknowledgements (a dead
    letter's rejection is one; RabbitMQ acks several deliveries with one frame) and publisher
    confirms (RabbitMQ: one frame may confirm several; the embedded bus has none)."""
    bus, channel = bus_and_channel
    queue = dest_queue(channel, "out")
    calls: list[int] = []

    async def handler(envelope: Envelope) -> None:
        calls.append(envelope.message_id)
        if envelope.message_id == 2 and calls.count(2) < 2:
            raise RuntimeError("store down")
        if envelope.message_id == 4:
            raise DeadLetter

    await bus.subscribe(queue, handler)
    await bus.publish(queue, [Envelope(i, b"x") for i in range(1, 6)])
    await until(lambda: 5 in calls)
    await asyncio.sleep(0.1)  # the last acknowledgements go out once per turn of the loop
    counted = bus.operations
    assert (counted.publishes, counted.deliveries) == (5, 5)
    if isinstance(bus, EmbeddedBus):
        assert (counted.acks, counted.confirms) == (5, 0)
    else:
        assert 2 <= counted.acks <= 5 and 1 <= counted.confirms <= 5


async def test_handlers_run_concurrently_up_to_the_limit(bus_and_channel: tuple[Bus, str]) -> None:
    bus, channel = bus_and_channel
    queue = dest_queue(channel, "out")
    running = peak = finished = 0

    async def handler(envelope: Envelope) -> None:
        nonlocal running, peak, finished
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        finished += 1

    await bus.subscribe(queue, handler, concurrency=4)
    await bus.publish(queue, [Envelope(i, b"x") for i in range(20)])
    await until(lambda: finished == 20)
    assert peak == 4


async def test_rabbit_start_fails_promptly_when_the_broker_is_unreachable() -> None:
    bus = RabbitBus("amqp://guest:guest@127.0.0.1:1/%2F", start_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(UnavailableError):
        await bus.start()
    assert time.monotonic() - started < 5


async def test_rabbit_single_active_consumer_fails_over_between_processes() -> None:
    channel = unique_channel()
    queue = dest_queue(channel, "fifo")
    spec = [QueueSpec(queue, single_active=True, dead_letter=dead_letter_queue(channel))]
    first, second = RabbitBus(RABBIT_URL), RabbitBus(RABBIT_URL)
    try:
        await first.start()
        await second.start()
        await first.declare(spec)
        await second.declare(spec)
        got: list[tuple[str, int]] = []

        def handler(name: str):  # type: ignore[no-untyped-def]
            async def handle(envelope: Envelope) -> None:
                got.append((name, envelope.message_id))
            return handle

        await first.subscribe(queue, handler("first"), concurrency=4)
        await asyncio.sleep(0.2)
        await second.subscribe(queue, handler("second"), concurrency=4)
        await first.publish(queue, [Envelope(i, b"x") for i in range(50)])
        await until(lambda: len(got) == 50)
        assert got == [("first", i) for i in range(50)]
        await first.close()
        await second.publish(queue, [Envelope(i, b"x") for i in range(50, 60)])
        await until(lambda: len(got) == 60)
        assert got[50:] == [("second", i) for i in range(50, 60)]
    finally:
        await first.close()
        await second.close()
        delete_channel_queues(channel, ["dest.fifo"])


async def test_rabbit_quorum_queues_from_the_url() -> None:
    channel = unique_channel()
    bus = make_bus(RABBIT_URL + "?queue_type=quorum")
    assert isinstance(bus, RabbitBus) and bus.queue_type == "quorum"
    try:
        await bus.start()
        await bus.declare([QueueSpec(dest_queue(channel, "q"), single_active=True,
                                     dead_letter=dead_letter_queue(channel))])
        await bus.publish(dest_queue(channel, "q"), [Envelope(1, b"x")])
        got: list[int] = []

        async def handler(envelope: Envelope) -> None:
            got.append(envelope.message_id)

        await bus.subscribe(dest_queue(channel, "q"), handler)
        await until(lambda: got == [1])
    finally:
        await bus.close()
        delete_channel_queues(channel, ["dest.q"])


async def test_rabbit_publish_to_a_missing_queue_fails_instead_of_losing() -> None:
    bus = RabbitBus(RABBIT_URL)
    await bus.start()
    try:
        with pytest.raises(UnavailableError, match="does not exist"):
            await bus.publish(f"conduit.{unique_channel()}.nowhere", [Envelope(1, b"x")])
    finally:
        await bus.close()


async def test_rabbit_accepts_the_kombu_spelling_of_the_default_vhost() -> None:
    """``amqp://host:5672//`` (as the docs and kombu write it) means vhost "/", not ""."""
    bus = RabbitBus("amqp://guest:guest@127.0.0.1:5672//", start_timeout=10.0)
    await bus.start()
    try:
        assert bus.connected
    finally:
        await bus.close()


async def test_embedded_queue_keeps_only_ids_beyond_its_capacity() -> None:
    """Beyond ``capacity`` a queue keeps message ids and reads the envelopes back (from the
    store, here a dict) as it drains: in order, each once, a failed read-back tried again."""
    bus = EmbeddedBus(redelivery_delay=0.01, capacity=10)
    queue = dest_queue("spill", "out")
    stored = {i: f"m{i}".encode() for i in range(1, 101)}
    reads: list[list[int]] = []

    async def reload(ids: list[int]) -> list[Envelope]:
        reads.append(ids)
        if len(reads) == 2:
            raise ConnectionError("store away for a moment")
        return [Envelope(i, stored[i]) for i in ids if i != 50]  # 50 was finished meanwhile

    bus.spill(queue, reload)
    await bus.publish(queue, [Envelope(i, stored[i], parsed="kept") for i in range(1, 101)])
    assert bus._queue(queue).qsize() == 10 and bus.depth(queue) == 100
    got: list[Envelope] = []

    async def handler(envelope: Envelope) -> None:
        got.append(envelope)
        await asyncio.sleep(0)

    await bus.subscribe(queue, handler, concurrency=1)
    await until(lambda: len(got) == 99)
    await bus.publish(queue, [Envelope(101, b"m101")])  # into memory again once caught up
    await until(lambda: len(got) == 100)
    await bus.close()
    assert [e.message_id for e in got] == [i for i in range(1, 102) if i != 50]
    assert all(e.parsed == "kept" for e in got[:10]) and got[10].parsed is None
    assert reads[0] == list(range(11, 16)) and reads[1] == reads[2]  # the failed read, again
    assert max(len(ids) for ids in reads) == 5  # half the capacity at a time
    assert bus.depth(queue) == 0


async def test_embedded_queue_without_a_store_holds_everything() -> None:
    bus = EmbeddedBus(capacity=10)
    queue = dest_queue("hold", "out")
    await bus.publish(queue, [Envelope(i, b"m") for i in range(1, 31)])
    assert bus._queue(queue).qsize() == 30 and bus.depth(queue) == 30
    await bus.close()


def test_queue_buffer_setting_reaches_the_embedded_bus(tmp_path: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from conduit.engine.engine import Engine
    from conduit.engine.settings import load_settings

    monkeypatch.setenv("CONDUIT_QUEUE_BUFFER", "2500")
    settings = load_settings(None, data_dir=tmp_path)
    engine = Engine(settings, [])
    assert isinstance(engine.bus, EmbeddedBus) and engine.bus.capacity == 2500
    engine.store.engine.dispose()


async def test_rabbitmq_queue_depths_for_the_dashboard() -> None:
    """The broker's count of ready messages, read on a connection of its own at most every
    DEPTH_MAX_AGE seconds while someone asks; a queue that is not there is left out."""
    channel = unique_channel()
    bus = RabbitBus(RABBIT_URL)
    await bus.start()
    try:
        dlq = dead_letter_queue(channel)
        queue = dest_queue(channel, "out")
        await bus.declare([QueueSpec(source_queue(channel)),
                           QueueSpec(queue, dead_letter=dlq)])
        await bus.publish(queue, [Envelope(i, b"m") for i in range(1, 6)])
        assert bus.depth(queue) is None  # not asked yet: the first call asks
        await until(lambda: bus.depth(queue) == 5, 10)
        assert bus.depth(dlq) == 0 and bus.depth(source_queue(channel)) == 0
        assert bus.depth("conduit.nothing.here") is None
        await bus.publish(queue, [Envelope(6, b"m")])
        await until(lambda: bus.depth(queue) == 6, 10)  # asked again once the value is old
    finally:
        await bus.close()
        delete_channel_queues(channel, ["source", "dest.out"])


async def test_rabbit_a_slow_delivery_does_not_hold_back_the_others_acks() -> None:
    """Acks are grouped, but a delivery settled behind a slower one is acknowledged on its own:
    with a prefetch of 4 and the first delivery stuck, the other 30 still flow (held-back acks
    would use up the prefetch), and once all are done nothing is left to redeliver."""
    channel = unique_channel()
    queue = dest_queue(channel, "out")
    spec = [QueueSpec(queue, dead_letter=dead_letter_queue(channel))]
    bus = RabbitBus(RABBIT_URL, prefetch=4)
    await bus.start()
    try:
        await bus.declare(spec)
        await bus.publish(queue, [Envelope(i, b"x") for i in range(1, 32)])
        release = asyncio.Event()
        done: list[int] = []

        async def handler(envelope: Envelope) -> None:
            if envelope.message_id == 1:
                await release.wait()
            if envelope.message_id == 7:
                raise DeadLetter
            done.append(envelope.message_id)

        await bus.subscribe(queue, handler, concurrency=2)
        await until(lambda: len(done) == 29)
        assert 1 not in done
        release.set()
        await until(lambda: len(done) == 30)
    finally:
        await bus.close()
    # a second consumer finds nothing: every ack reached the broker, the last ones at close
    again = RabbitBus(RABBIT_URL)
    await again.start()
    try:
        await again.declare(spec)
        redelivered: list[int] = []

        async def record(envelope: Envelope) -> None:
            redelivered.append(envelope.message_id)

        await again.subscribe(queue, record)
        await asyncio.sleep(0.5)
        assert redelivered == []
        await until(lambda: len(get_all(dead_letter_queue(channel))) == 1, 5)
    finally:
        await again.close()
        delete_channel_queues(channel, ["dest.out"])


def test_rabbit_acks_settled_together_go_as_one_multiple_ack() -> None:
    """The ack window (no broker needed for the arithmetic): the settled run at the front goes
    as one multiple ack, a settled delivery behind an unsettled one on its own, a rejection at
    once and skipped by the next multiple ack."""
    from conduit.bus.rabbitmq import _Acks

    class Recorder:
        is_open = True

        def __init__(self) -> None:
            self.frames: list[tuple[str, int, bool]] = []

        def basic_ack(self, tag: int, multiple: bool = False) -> None:
            self.frames.append(("ack", tag, multiple))

        def basic_reject(self, tag: int, requeue: bool = True) -> None:
            self.frames.append(("reject", tag, requeue))

    channel = Recorder()
    acks = _Acks(channel)  # type: ignore[arg-type]
    loop = asyncio.new_event_loop()
    try:
        for tag in range(1, 9):
            acks.received(tag)
        for tag in (2, 3):
            acks.settle(tag, True, loop)
        acks.flush()
        assert channel.frames == [("ack", 2, False), ("ack", 3, False)]
        channel.frames.clear()
        for tag, ack in ((1, True), (4, True), (5, False), (6, True), (8, True)):
            acks.settle(tag, ack, loop)
        acks.flush()
        assert channel.frames == [("reject", 5, False), ("ack", 6, True), ("ack", 8, False)]
        channel.frames.clear()
        acks.settle(7, True, loop)
        acks.flush()
        assert channel.frames == [("ack", 7, True)]  # 8 went on its own: not sent twice
        assert not acks._unsettled and not acks._gone  # nothing kept once all are settled
    finally:
        loop.close()


async def test_one_publish_reaches_every_queue_of_a_message(
        bus_and_channel: tuple[Bus, str]) -> None:
    """A message for two destination queues is one publish (and on RabbitMQ one confirm),
    delivered once from each queue; routes of one message with different bytes are one
    publish per payload."""
    bus, channel = bus_and_channel
    out, fifo = dest_queue(channel, "out"), dest_queue(channel, "fifo")
    await bus.publish_routed([(out, Envelope(7, b"same", "c7")),
                              (fifo, Envelope(7, b"same", "c7"))])
    assert bus.operations.publishes == 1
    if isinstance(bus, RabbitBus):
        assert bus.operations.confirms == 1
    await bus.publish_routed([(out, Envelope(8, b"a", "c8")), (fifo, Envelope(8, b"b", "c8")),
                              (out, Envelope(9, b"n", "c9")), (fifo, Envelope(9, b"n", "c9"))])
    assert bus.operations.publishes == 4
    got = await _collect(bus, out, fifo)
    await until(lambda: len(got[out]) == 3 and len(got[fifo]) == 3)
    assert got[out] == [(7, b"same", "c7"), (8, b"a", "c8"), (9, b"n", "c9")]
    assert got[fifo] == [(7, b"same", "c7"), (8, b"b", "c8"), (9, b"n", "c9")]
    await asyncio.sleep(0.1)
    assert bus.operations.deliveries == 6


def test_fanouts_group_each_message_and_keep_each_queue_in_order() -> None:
    a, b = "conduit.c.dest.a", "conduit.c.dest.b"
    items = [(a, Envelope(1, b"x")), (b, Envelope(1, b"x")),
             (a, Envelope(2, b"y")), (b, Envelope(2, b"z")),  # its payloads differ
             (a, Envelope(3, b"x")), (a, Envelope(3, b"x")),  # twice to one queue: twice
             (b, Envelope(4, b"x", recheck=True)), (a, Envelope(4, b"x"))]  # not one copy
    assert [(f.queues, [e.message_id for e in f.envelopes]) for f in fanouts(items)] == [
        ([a, b], [1, 1]), ([a], [2]), ([b], [2]), ([a], [3]), ([a], [3]), ([b], [4]), ([a], [4])]


def test_republished_deliveries_of_a_message_go_side_by_side_unless_order_forbids() -> None:
    a, b = "conduit.c.dest.a", "conduit.c.dest.b"
    by_destination = [(a, Envelope(1, b"x")), (a, Envelope(3, b"x")),
                      (b, Envelope(2, b"x")), (b, Envelope(3, b"x"))]
    assert [(q, e.message_id) for q, e in by_message(by_destination)] == [
        (a, 1), (b, 2), (a, 3), (b, 3)]
    unsorted = [(a, Envelope(3, b"x")), (a, Envelope(1, b"x")), (b, Envelope(1, b"x"))]
    assert by_message(unsorted) == unsorted


async def test_rabbit_a_publish_routed_to_no_queue_is_not_confirmed() -> None:
    """The broker returns a publish that reached none of its queues (``mandatory``): the
    call fails instead of counting it queued."""
    bus = RabbitBus(RABBIT_URL)
    await bus.start()
    channel = unique_channel()
    try:
        with pytest.raises(UnavailableError, match="none of the queues"):
            await bus.publish_routed([(dest_queue(channel, "a"), Envelope(1, b"x")),
                                      (dest_queue(channel, "b"), Envelope(1, b"x"))])
        assert bus.operations.publishes == 1
    finally:
        await bus.close()


def test_rabbit_engine_answers_ae_when_no_destination_queue_takes_the_message(
        tmp_path: Any, postgres_url: str) -> None:
    """A two-destination channel on RabbitMQ and PostgreSQL: one publish per message, both
    destinations get it. With both destination queues gone the one publish comes back: the
    sender gets AE (never AA), the message stays in the store, and once the queues are back a
    reprocess delivers it to both."""
    from conduit.engine.topology import queue_specs
    from conduit.ops.operations import reprocess
    from conduit.store.replay import select_messages
    from tests.rabbit import engine_on, hl7
    from tests.support import MllpReceiver, free_port, mllp_exchange, msa, wait_for

    name = unique_channel("fan")

    async def scenario() -> None:
        with MllpReceiver() as receiver:
            port = free_port()
            config = {"name": name, "source": {"type": "mllp", "host": "127.0.0.1", "port": port},
                      "destinations": [
                          {"name": d, "type": "mllp", "host": "127.0.0.1", "port": receiver.port,
                           "retry": {"attempts": 2, "initial": "10ms"}} for d in ("one", "two")]}
            async with engine_on([config], tmp_path, bus_url=RABBIT_URL,
                                 store_url=postgres_url) as engine:
                before = engine.bus.operations.publishes
                [ack] = await asyncio.to_thread(mllp_exchange, port, [hl7("FAN")])
                assert msa(ack)[1] == "AA"
                assert engine.bus.operations.publishes - before == 1
                await wait_for(lambda: sorted(receiver.control_ids()) == ["FAN", "FAN"])

                delete_channel_queues(name, ["dest.one", "dest.two"])
                [ack] = await asyncio.to_thread(mllp_exchange, port, [hl7("LOST")])
                assert msa(ack)[1] == "AE"
                [record] = engine.store.search(channel=name, control_id="LOST")
                assert record.status == "ERROR"
                assert select_messages(engine.store, ids=[record.id]) == [record.id]
                kept = engine.store.get(record.id)  # readable whole: the dashboard shows it
                assert kept is not None and kept.transformed
                assert [d.content for d in kept.deliveries] == [kept.transformed] * 2

                # the queues come back at the next reconnect (their consumers were cancelled)
                await engine.bus.declare(queue_specs(engine.runtimes[name].channel))
                engine.bus._close_connection()
                await asyncio.sleep(0.1)
                await wait_for(lambda: engine.bus.connected)
                await reprocess(engine, record.id, user="test")
                await wait_for(lambda: sorted(receiver.control_ids()) == [
                    "FAN", "FAN", "LOST", "LOST"])
                await wait_for(lambda: engine.store.search(
                    channel=name, control_id="LOST")[0].status == "SENT")
    try:
        asyncio.run(scenario())
    finally:
        delete_channel_queues(name)
