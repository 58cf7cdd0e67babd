"""Nothing stuck (issue 17, item 7), against the real local RabbitMQ and PostgreSQL.

A crash between the store's commit and the broker's publish (kill -9 of RabbitMQ and
PostgreSQL) left rows QUEUED for ever. The sweeper puts such work back once, and never sends
twice what was published and is just slow; one engine of a cluster sweeps (advisory lock).
Messages answered AE because they could not be queued are marked, and a reprocess by status
leaves them out."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pika

from conduit.store.store import Route
from tests.rabbit import RABBIT_URL, delete_channel_queues, engine_on, hl7, unique_channel
from tests.support import MllpReceiver, free_port, mllp_exchange, msa, wait_for

SWEEP = {"interval": "1h", "grace": "200ms"}  # passes are run by the test


def channel(name: str, receiver: int) -> dict[str, Any]:
    return {"name": name, "source": {"type": "mllp", "host": "127.0.0.1", "port": free_port()},
            "destinations": [{"name": "out", "type": "mllp", "host": "127.0.0.1",
                              "port": receiver, "retry": {"attempts": 2, "initial": "10ms"}}]}


async def commit_without_publishing(engine: Any, name: str, control_id: str) -> int:
    """What a crash between commit and publish leaves: the message and its delivery QUEUED in
    the store, nothing on the bus."""
    raw = hl7(control_id)
    return int(await engine.store.accepted(
        name, raw, control_id=control_id, message_type="ADT^A01", status="TRANSFORMED",
        transformed=None, error=None, routes=[Route("out", raw)]))


def test_committed_but_unpublished_work_is_swept_and_delivered_once(
        tmp_path: Path, postgres_url: str) -> None:
    name = unique_channel("sw")

    async def scenario() -> None:
        with MllpReceiver() as receiver:
            async with engine_on([channel(name, receiver.port)], tmp_path, bus_url=RABBIT_URL,
                                 store_url=postgres_url, sweep=SWEEP) as engine:
                port = engine.runtimes[name].source.port
                [ack] = await asyncio.to_thread(mllp_exchange, port, [hl7("FLOWED")])
                assert msa(ack)[1] == "AA"
                stuck = await commit_without_publishing(engine, name, "STUCK")
                await wait_for(lambda: receiver.control_ids() == ["FLOWED"])
                await asyncio.sleep(0.4)  # past the grace period
                assert engine.store.get(stuck).status == "QUEUED"
                sweeper = engine.service("sweeper")
                assert sweeper is not None
                assert await sweeper.run_once() == 1
                await wait_for(lambda: engine.store.get(stuck).status == "SENT")
                assert await sweeper.run_once() == 0  # swept once, never again
                await asyncio.sleep(0.5)
                assert sorted(receiver.control_ids()) == ["FLOWED", "STUCK"]
                assert "sweep" in [kind for _, kind, _ in engine.store.get(stuck).events]
    try:
        asyncio.run(scenario())
    finally:
        delete_channel_queues(name)


def test_a_published_delivery_that_is_just_slow_is_not_sent_twice(
        tmp_path: Path, postgres_url: str) -> None:
    """Published, but held by a consumer (the channel is stopped): to the store it looks like
    stuck work, and the sweeper puts a copy back; the copy is checked against the store when
    its turn comes, after the original was sent, and goes nowhere."""
    from conduit.bus import Envelope
    from conduit.engine.topology import republish

    name = unique_channel("sw")

    async def scenario() -> None:
        with MllpReceiver() as receiver:
            async with engine_on([channel(name, receiver.port)], tmp_path, bus_url=RABBIT_URL,
                                 store_url=postgres_url, sweep=SWEEP) as engine:
                runtime = engine.runtimes[name]
                await engine.control.stop(name)  # workers hold what they take
                slow = await commit_without_publishing(engine, name, "SLOW")
                await republish(engine.bus, name, runtime._configs, [],
                                [("out", Envelope(slow, hl7("SLOW")))])
                await asyncio.sleep(0.5)  # past the grace period, taken by a held consumer
                sweeper = engine.service("sweeper")
                assert await sweeper.run_once() == 1  # looks stuck: a copy goes back
                await engine.control.start(name)
                await wait_for(lambda: engine.store.get(slow).status == "SENT")
                await asyncio.sleep(1.0)  # the copy's turn has come and gone
                assert receiver.control_ids() == ["SLOW"]
    try:
        asyncio.run(scenario())
    finally:
        delete_channel_queues(name)


def test_one_engine_of_a_cluster_sweeps(tmp_path: Path, postgres_url: str) -> None:
    from conduit.engine.jobs.sweeper import Sweeper
    from conduit.engine.settings import SweepSettings
    from conduit.store import Store

    name = unique_channel("sw")

    async def scenario() -> None:
        with MllpReceiver() as receiver:
            async with engine_on([channel(name, receiver.port)], tmp_path, bus_url=RABBIT_URL,
                                 store_url=postgres_url, sweep=SWEEP) as engine:
                first = engine.service("sweeper")
                other_store = Store(postgres_url)
                other = Sweeper(SweepSettings.model_validate(SWEEP), other_store, engine.bus,
                                lambda: {})
                try:
                    assert await first.run_once() == 0  # it leads (the lock is its)
                    assert await other.run_once() is None  # another engine: not its turn
                    stuck = await commit_without_publishing(engine, name, "LEADER")
                    await asyncio.sleep(0.4)
                    assert await other.run_once() is None
                    await first.stop()  # the leader goes: the lock is free
                    other.channels = lambda: {name: engine.runtimes[name].channel}
                    assert await other.run_once() == 1
                    await wait_for(lambda: engine.store.get(stuck).status == "SENT")
                    assert receiver.control_ids() == ["LEADER"]
                finally:
                    await other.stop()
                    await other_store.close()
    try:
        asyncio.run(scenario())
    finally:
        delete_channel_queues(name)


def test_messages_answered_ae_for_want_of_a_queue_are_left_out_of_reprocess_by_status(
        tmp_path: Path, postgres_url: str) -> None:
    from conduit.store.replay import select_messages

    name = unique_channel("sw")

    async def scenario() -> None:
        with MllpReceiver() as receiver:
            async with engine_on([channel(name, receiver.port)], tmp_path, bus_url=RABBIT_URL,
                                 store_url=postgres_url, sweep=SWEEP) as engine:
                port = engine.runtimes[name].source.port
                # the broker loses the destination's queue: publishing to it fails
                connection = pika.BlockingConnection(pika.URLParameters(RABBIT_URL))
                connection.channel().queue_delete(f"conduit.{name}.dest.out")
                connection.close()
                [ack] = await asyncio.to_thread(mllp_exchange, port, [hl7("REFUSED")])
                assert msa(ack)[1] == "AE"
                [record] = engine.store.search(channel=name, control_id="REFUSED")
                assert record.status == "ERROR"
                # what an operator re-sends "by status" is not what the sender resends itself
                assert select_messages(engine.store, channel=name, status="ERROR") == []
                assert select_messages(engine.store, channel=name, status="ERROR",
                                       include_not_accepted=True) == [record.id]
                assert select_messages(engine.store, ids=[record.id]) == [record.id]
                # and the sweeper leaves it alone too
                await asyncio.sleep(0.4)
                assert await engine.service("sweeper").run_once() == 0
                assert receiver.control_ids() == []
    try:
        asyncio.run(scenario())
    finally:
        delete_channel_queues(name)


def test_a_message_stored_but_never_queued_for_the_pipeline_is_swept(
        tmp_path: Path, postgres_url: str) -> None:
    """A listeners-only process stores the raw message, then publishes it to the source queue:
    a crash in between leaves it RECEIVED."""
    name = unique_channel("sw")

    async def scenario() -> None:
        with MllpReceiver() as receiver:
            async with engine_on([channel(name, receiver.port)], tmp_path, bus_url=RABBIT_URL,
                                 store_url=postgres_url, sweep=SWEEP) as engine:
                received = await engine.store.received(name, hl7("RAW"), control_id="RAW",
                                                       message_type="ADT^A01")
                await asyncio.sleep(0.4)
                assert engine.store.get(received).status == "RECEIVED"
                sweeper = engine.service("sweeper")
                assert await sweeper.run_once() == 1
                await wait_for(lambda: engine.store.get(received).status == "SENT")
                assert await sweeper.run_once() == 0
                await asyncio.sleep(0.5)
                assert receiver.control_ids() == ["RAW"]
    try:
        asyncio.run(scenario())
    finally:
        delete_channel_queues(name)


def test_a_swept_message_goes_back_to_its_destinations_in_one_publish(
        tmp_path: Path, postgres_url: str) -> None:
    name = unique_channel("sw")

    async def scenario() -> None:
        with MllpReceiver() as receiver:
            config = channel(name, receiver.port)
            config["destinations"].append({**config["destinations"][0], "name": "copy"})
            async with engine_on([config], tmp_path, bus_url=RABBIT_URL,
                                 store_url=postgres_url, sweep=SWEEP) as engine:
                raw = hl7("BOTH")
                stuck = int(await engine.store.accepted(
                    name, raw, control_id="BOTH", message_type="ADT^A01", status="TRANSFORMED",
                    transformed=None, error=None, routes=[Route("out", raw), Route("copy", raw)]))
                await asyncio.sleep(0.4)  # past the grace period
                before = engine.bus.operations.publishes
                assert await engine.service("sweeper").run_once() == 1
                assert engine.bus.operations.publishes - before == 1
                await wait_for(lambda: engine.store.get(stuck).status == "SENT")
                assert receiver.control_ids() == ["BOTH", "BOTH"]
    try:
        asyncio.run(scenario())
    finally:
        delete_channel_queues(name)
