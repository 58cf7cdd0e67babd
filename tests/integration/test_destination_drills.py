"""Destination failure drills in one process: a poison message, a receiver that is down for a
while, per-patient ordering, dedupe. Each runs on the embedded bus with SQLite and on the real
RabbitMQ with the real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from conduit.bus import Envelope, dead_letter_queue, dest_queue
from tests.rabbit import RABBIT_URL, delete_channel_queues, engine_on, get_all, hl7, unique_channel
from tests.support import (
    MllpReceiver,
    control_id,
    free_port,
    mllp_exchange,
    msa,
    source_port,
    wait_for,
)

FAST_RETRY = {"attempts": 3, "initial": "20ms", "max": "100ms"}


@pytest.fixture(params=["embedded+sqlite", "rabbitmq+postgres"])
def stack(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    channel = unique_channel("d")
    if request.param == "embedded+sqlite":
        yield {"bus_url": None, "store_url": None, "channel": channel}
        return
    postgres = request.getfixturevalue("postgres_url")
    try:
        yield {"bus_url": RABBIT_URL, "store_url": postgres, "channel": channel}
    finally:
        delete_channel_queues(channel)


def channel_with(name: str, port: int, destination: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "source": {"type": "mllp", "host": "127.0.0.1", "port": port},
            "destinations": [{"name": "out", "type": "mllp", "host": "127.0.0.1",
                              "ack_timeout": "2s", "connect_timeout": "1s", **destination}]}


def held_back(name: str, receiver_port: int) -> dict[str, Any]:
    """A channel whose ordered destination retries a few times, then its breaker holds the
    messages back while the receiver at ``receiver_port`` is down."""
    return channel_with(name, free_port(), {
        "port": receiver_port, "ordered": True,
        "retry": {"attempts": 3, "initial": "50ms", "max": "200ms"},
        "breaker": {"failures": 2, "reset": "300ms"}})


async def send(port: int, messages: list[bytes]) -> list[str]:
    answers = await asyncio.to_thread(mllp_exchange, port, messages)
    return [msa(a)[1] for a in answers]


def test_poison_message_is_dead_lettered_while_the_rest_flow(
        stack: dict[str, Any], tmp_path: Path) -> None:
    name = stack["channel"]
    answer = lambda m: "AE" if control_id(m) == "POISON" else "AA"  # noqa: E731

    async def scenario() -> None:
        with MllpReceiver(answer=answer) as downstream:
            channel = channel_with(name, free_port(), {"port": downstream.port,
                                                       "retry": FAST_RETRY})
            async with engine_on([channel], tmp_path, bus_url=stack["bus_url"],
                                 store_url=stack["store_url"]) as engine:
                ids = [f"M{i}" for i in range(10)]
                ids[4] = "POISON"
                assert await send(source_port(engine, name),
                                  [hl7(i) for i in ids]) == ["AA"] * 10
                await wait_for(lambda: len(downstream.messages) >= 12, 20)
                await wait_for(lambda: engine.store.counts(name).get(name) == {
                    "SENT": 9, "ERROR": 1}, 10)
                poison = engine.store.search(channel=name, status="ERROR")[0]
                record = engine.store.get(poison.id)
                assert record is not None and record.control_id == "POISON"
                assert record.deliveries[0].attempts == 3
                assert "AE" in (record.deliveries[0].error or "")
                assert downstream.control_ids().count("POISON") == 3
                assert sorted(set(downstream.control_ids()) - {"POISON"}) == sorted(
                    i for i in ids if i != "POISON")
                if stack["bus_url"]:
                    dead: list[tuple[str | None, bytes]] = []
                    await wait_for(lambda: bool(dead.extend(get_all(dead_letter_queue(name)))
                                                or dead), 5)
                    assert [m for m, _ in dead] == [str(poison.id)]
                else:
                    await wait_for(lambda: engine.bus.depth(dead_letter_queue(name)) == 1, 5)

    asyncio.run(scenario())


def test_receiver_down_breaker_opens_messages_wait_then_all_arrive_in_order(
        stack: dict[str, Any], tmp_path: Path) -> None:
    name = stack["channel"]
    receiver_port = free_port()

    async def scenario() -> None:
        channel = held_back(name, receiver_port)
        async with engine_on([channel], tmp_path, bus_url=stack["bus_url"],
                             store_url=stack["store_url"]) as engine:
            runtime = engine.runtimes[name]
            ids = [f"O{i:03d}" for i in range(30)]
            assert await send(source_port(engine, name), [hl7(i) for i in ids]) == ["AA"] * 30
            await wait_for(lambda: runtime.breaker_state("out") == "open", 10)
            await asyncio.sleep(1.5)  # several reset periods with the receiver still down
            assert "ERROR" not in engine.store.counts(name).get(name, {})
            assert not runtime.destination_state()["out"]["blocked"]
            with MllpReceiver(port=receiver_port) as downstream:
                await wait_for(lambda: len(set(downstream.control_ids())) == 30, 20)
                received = downstream.control_ids()
                await wait_for(lambda: engine.store.counts(name)[name] == {"SENT": 30}, 10)
            assert [c for n, c in enumerate(received) if n == 0 or received[n - 1] != c] == ids
            assert runtime.breaker_state("out") == "closed"

    asyncio.run(scenario())


def test_partitioned_destination_keeps_order_per_patient(
        stack: dict[str, Any], tmp_path: Path) -> None:
    name = stack["channel"]
    slow = lambda m: asyncio.run(asyncio.sleep(0.001)) or "AA"  # noqa: E731

    async def scenario() -> None:
        with MllpReceiver(answer=slow) as downstream:
            channel = channel_with(name, free_port(), {
                "port": downstream.port, "partition_by": "PID-3.1", "partitions": 4,
                "retry": FAST_RETRY})
            async with engine_on([channel], tmp_path, bus_url=stack["bus_url"],
                                 store_url=stack["store_url"]) as engine:
                messages = [(f"P{p}", f"P{p}-{n:02d}") for n in range(15) for p in range(6)]
                port = source_port(engine, name)
                answers = await asyncio.gather(*(
                    send(port, [hl7(c, p) for p, c in messages if p == patient])
                    for patient in ("P0", "P1", "P2", "P3", "P4", "P5")))
                assert all(a == ["AA"] * 15 for a in answers)
                await wait_for(lambda: len(downstream.messages) >= 90, 20)
                received = downstream.control_ids()
                for patient in range(6):
                    mine = [c for c in received if c.startswith(f"P{patient}-")]
                    assert mine == [f"P{patient}-{n:02d}" for n in range(15)]

    asyncio.run(scenario())


def test_dedupe_sends_a_message_once_even_when_redelivered(
        stack: dict[str, Any], tmp_path: Path) -> None:
    name = stack["channel"]

    async def scenario() -> None:
        with MllpReceiver() as downstream:
            channel = channel_with(name, free_port(), {"port": downstream.port, "dedupe": True})
            async with engine_on([channel], tmp_path, bus_url=stack["bus_url"],
                                 store_url=stack["store_url"]) as engine:
                assert await send(source_port(engine, name), [hl7("D1")]) == ["AA"]
                await wait_for(lambda: engine.store.counts(name)[name] == {"SENT": 1}, 10)
                message_id = engine.store.search(channel=name)[0].id
                # As after a crash between sending and acknowledging: the same envelope again.
                await engine.bus.publish(dest_queue(name, "out"),
                                         [Envelope(message_id, hl7("D1"))] * 2)
                await asyncio.sleep(0.5)
                assert downstream.control_ids() == ["D1"]

    asyncio.run(scenario())


def test_a_backlog_beyond_the_queue_capacity_waits_in_the_store(tmp_path: Path) -> None:
    """Embedded bus: while the receiver is down a queue holds at most ``capacity`` messages in
    memory and the rest wait in the store; once it is back, all arrive, in order, once."""
    name = unique_channel("spill")
    receiver_port = free_port()

    async def scenario() -> None:
        channel = held_back(name, receiver_port)
        async with engine_on([channel], tmp_path, bus_url=None) as engine:
            engine.bus.capacity = 5
            queue = dest_queue(name, "out")
            ids = [f"S{i:03d}" for i in range(40)]
            assert await send(source_port(engine, name), [hl7(i) for i in ids]) == ["AA"] * 40
            await wait_for(lambda: engine.runtimes[name].breaker_state("out") == "open", 10)
            assert engine.bus._queue(queue).qsize() <= 5
            assert engine.bus.depth(queue) >= 34  # one may be in a sender's hands
            with MllpReceiver(port=receiver_port) as downstream:
                await wait_for(lambda: engine.store.counts(name)[name] == {"SENT": 40}, 20)
                received = downstream.control_ids()
            assert [c for n, c in enumerate(received) if n == 0 or received[n - 1] != c] == ids
            assert engine.bus.depth(queue) == 0

    asyncio.run(scenario())


def test_recovering_a_backlog_beyond_the_queue_buffer(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Embedded bus: unfinished work left by a crash, more than a queue holds in memory, is
    queued a part at a time and read back by id as the queue drains: all of it arrives, in
    order, once."""
    from conduit.bus import EmbeddedBus
    from conduit.engine import runtime
    from conduit.store import Store
    from conduit.store.store import Route

    name = unique_channel("rec")
    ids = [f"R{i:03d}" for i in range(250)]
    store = Store(f"sqlite:///{tmp_path / 'data' / 'conduit.db'}")
    store.migrate()

    async def crash_leftovers() -> None:  # stored and QUEUED, as a crash leaves them
        for control in ids:
            await store.accepted(name, hl7(control), control_id=control, message_type="ADT^A01",
                                 status="TRANSFORMED", transformed=None, error=None,
                                 routes=[Route("out", hl7(control))])
        await store.close()

    asyncio.run(crash_leftovers())
    store.engine.dispose()
    read_back: list[int] = []
    original = EmbeddedBus._read_back

    async def spy(self: EmbeddedBus, queue: str) -> None:
        read_back.append(len(self._spilled.get(queue, ())))
        await original(self, queue)

    monkeypatch.setattr(EmbeddedBus, "_read_back", spy)
    published: list[int] = []
    publish = EmbeddedBus.publish_routed

    async def count(self: EmbeddedBus, items: Sequence[tuple[str, Envelope]]) -> None:
        published.append(len(items))
        await publish(self, items)

    monkeypatch.setattr(EmbeddedBus, "publish_routed", count)
    monkeypatch.setattr(runtime, "RECOVER_PART", 60)

    async def scenario() -> None:
        with MllpReceiver() as downstream:
            channel = channel_with(name, free_port(), {"port": downstream.port, "ordered": True})
            async with engine_on([channel], tmp_path, bus_url=None,
                                 queue_buffer=100) as engine:
                await wait_for(lambda: engine.store.counts(name)[name] == {"SENT": 250}, 20)
                assert downstream.control_ids() == ids
                assert engine.bus.depth(dest_queue(name, "out")) == 0

    asyncio.run(scenario())
    assert published == [60, 60, 60, 60, 10]  # read from the store a part at a time
    assert read_back and max(read_back) >= 100  # beyond the buffer, parts waited as ids
