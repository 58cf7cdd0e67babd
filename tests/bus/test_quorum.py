"""Quorum queues by default, classic queues of an older version kept, and their migration:
against the real local RabbitMQ."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest
import structlog
from click.testing import CliRunner

from conduit.bus import Envelope
from conduit.bus.base import DeadLetter, QueueSpec, dead_letter_queue, dest_queue, source_queue
from conduit.bus.migrate import SUFFIX, migrate_queues
from conduit.bus.rabbitmq import RabbitBus, queue_arguments
from conduit.core.errors import ConfigError
from tests.rabbit import RABBIT_URL, delete_channel_queues, unique_channel

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def channel() -> Any:
    name = unique_channel("q")
    yield name
    delete_channel_queues(name)
    with pika.BlockingConnection(pika.URLParameters(RABBIT_URL)) as connection:
        for queue in ("source", "dest.out", "dlq"):
            connection.channel().queue_delete(f"conduit.{name}.{queue}{SUFFIX}")


def specs(channel: str) -> list[QueueSpec]:
    dlq = dead_letter_queue(channel)
    return [QueueSpec(source_queue(channel)),
            QueueSpec(dest_queue(channel, "out"), single_active=True, dead_letter=dlq)]


def queue_types(channel: str) -> dict[str, str]:
    out = subprocess.run(["rabbitmqctl", "list_queues", "-q", "--no-table-headers", "name",
                          "type"], capture_output=True, text=True, timeout=60, check=True).stdout
    return {name: kind for name, kind in (line.split() for line in out.splitlines()
                                          if line.startswith(f"conduit.{channel}."))}


def declare_classic(channel: str, messages: int = 0,
                    queues: list[QueueSpec] | None = None) -> None:
    """The queues as the version before (classic was its default) declared them, holding
    ``messages`` envelopes (published to both queues at once, with the ``CC`` header)."""
    with pika.BlockingConnection(pika.URLParameters(RABBIT_URL)) as connection:
        ch = connection.channel()
        dlq = dead_letter_queue(channel)
        ch.exchange_declare(dlq, "fanout", durable=True)
        ch.queue_declare(dlq, durable=True, arguments=queue_arguments(None, "classic"))
        ch.queue_bind(dlq, dlq)
        for spec in queues or specs(channel):
            ch.queue_declare(spec.name, durable=True, arguments=queue_arguments(spec, "classic"))
        ch.confirm_delivery()
        for i in range(messages):
            ch.basic_publish("", source_queue(channel), f"m{i}".encode(), pika.BasicProperties(
                delivery_mode=2, message_id=str(i),
                headers={"CC": [dest_queue(channel, "out")], "x-conduit-correlation-id": f"c{i}"}))


async def roundtrip(bus: RabbitBus, queue: str, first: int = 100) -> list[int]:
    """Publish two envelopes and consume them back."""
    got: list[int] = []

    async def handler(envelope: Envelope) -> None:
        got.append(envelope.message_id)

    await bus.publish(queue, [Envelope(first, b"x"), Envelope(first + 1, b"y")])
    await bus.subscribe(queue, handler)
    deadline = time.monotonic() + 10
    while len(got) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return got


async def test_queues_are_quorum_by_default_dead_letter_queue_too(channel: str) -> None:
    bus = RabbitBus(RABBIT_URL, redelivery_delay=0.05)
    assert bus.queue_type == "quorum" and not bus.queue_type_explicit
    await bus.start()
    try:
        await bus.declare(specs(channel))
        out = dest_queue(channel, "out")
        assert queue_types(channel) == {source_queue(channel): "quorum", out: "quorum",
                                        dead_letter_queue(channel): "quorum"}
        assert bus.classic_queues == set()

        async def reject(envelope: Envelope) -> None:
            raise DeadLetter

        await bus.publish(out, [Envelope(7, b"dead")])
        await bus.subscribe(out, reject)
        deadline = time.monotonic() + 10
        while bus.depth(dead_letter_queue(channel)) != 1:  # a quorum queue dead-letters too
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    finally:
        await bus.close()


async def test_classic_queues_of_an_older_version_are_kept_with_one_warning(channel: str) -> None:
    declare_classic(channel, messages=3)
    bus = RabbitBus(RABBIT_URL)
    await bus.start()
    try:
        with structlog.testing.capture_logs() as logs:
            await bus.declare(specs(channel))
            await bus.declare(specs(channel))  # again (a reconnect): no second warning
        names = {source_queue(channel), dest_queue(channel, "out"), dead_letter_queue(channel)}
        assert bus.classic_queues == names
        warned = [e for e in logs if e["event"] == "rabbitmq queue kept classic"]
        assert sorted(e["queue"] for e in warned) == sorted(names)
        assert all(e["log_level"] == "warning" and "migrate-queues" in e["hint"] for e in warned)
        assert set(queue_types(channel).values()) == {"classic"}
        got = await roundtrip(bus, source_queue(channel))
        assert got == [0, 1, 2, 100, 101]  # what was queued before the upgrade, then new ones
    finally:
        await bus.close()


async def test_a_queue_type_named_in_the_url_is_required(channel: str) -> None:
    declare_classic(channel)
    bus = RabbitBus(RABBIT_URL + "?queue_type=quorum")
    await bus.start()
    try:
        with pytest.raises(ConfigError, match=f"{source_queue(channel)} exists with other"):
            await bus.declare(specs(channel)[:1])
    finally:
        await bus.close()
    classic = RabbitBus(RABBIT_URL + "?queue_type=classic")
    await classic.start()
    try:
        await classic.declare(specs(channel))  # the classic queues are what it asks for
        assert classic.classic_queues == set()
        quorum = f"conduit.{channel}.dest.quorum"
        with pika.BlockingConnection(pika.URLParameters(RABBIT_URL)) as connection:
            connection.channel().queue_declare(quorum, durable=True,
                                               arguments={"x-queue-type": "quorum"})
        with pytest.raises(ConfigError, match="x-queue-type"):
            await classic.declare([QueueSpec(quorum)])
    finally:
        await classic.close()


async def test_other_settings_that_differ_still_stop_the_start(channel: str) -> None:
    """Kept classic only when nothing else differs: an ordered queue declared unordered is
    refused as before, whatever its type."""
    declare_classic(channel)
    bus = RabbitBus(RABBIT_URL)
    await bus.start()
    try:
        with pytest.raises(ConfigError, match="x-single-active-consumer"):
            await bus.declare([QueueSpec(source_queue(channel), single_active=True)])
    finally:
        await bus.close()


def test_migrate_queues_keeps_every_message_in_order(channel: str) -> None:
    declare_classic(channel, messages=50)
    results = migrate_queues(RABBIT_URL, specs(channel))
    moved = {r.queue: r.moved for r in results}
    assert moved == {dead_letter_queue(channel): 0, source_queue(channel): 50,
                     dest_queue(channel, "out"): 50}
    assert set(queue_types(channel).values()) == {"quorum"}  # the migration queues are gone
    with pika.BlockingConnection(pika.URLParameters(RABBIT_URL)) as connection:
        ch = connection.channel()
        for queue in (source_queue(channel), dest_queue(channel, "out")):
            got = []
            # consumed, not basic.get: quorum queues refuse it with single-active-consumer
            for method, properties, body in ch.consume(queue, inactivity_timeout=1):
                if method is None:
                    break
                ch.basic_ack(method.delivery_tag)
                got.append((properties.message_id, body,
                            properties.headers["x-conduit-correlation-id"],
                            "CC" in properties.headers))
            ch.cancel()
            # every message once, in order, its headers kept but not CC (no second copy)
            assert got == [(str(i), f"m{i}".encode(), f"c{i}", False) for i in range(50)]
        # the dead-letter queue is bound to its exchange again, and the settings are right
        ch.confirm_delivery()  # (mandatory: raises UnroutableError if no queue is bound)
        ch.basic_publish(dead_letter_queue(channel), "", b"dead", mandatory=True)
        for spec in specs(channel):
            ch.queue_declare(spec.name, durable=True, arguments=queue_arguments(spec, "quorum"))
    again = migrate_queues(RABBIT_URL, specs(channel))
    assert all(r.already and r.moved == 0 for r in again)


def test_migrate_queues_finishes_an_interrupted_run(channel: str) -> None:
    """A run that stopped after emptying queues into their migration queues (and deleting
    them): the next run declares them as quorum, binds the dead-letter queue again and brings
    the messages back."""
    source, dlq = source_queue(channel), dead_letter_queue(channel)
    with pika.BlockingConnection(pika.URLParameters(RABBIT_URL)) as connection:
        ch = connection.channel()
        ch.exchange_declare(dlq, "fanout", durable=True)
        ch.confirm_delivery()
        for queue, count in ((source, 5), (dlq, 1)):
            ch.queue_declare(queue + SUFFIX, durable=True, arguments={"x-queue-type": "quorum"})
            for i in range(count):
                ch.basic_publish("", queue + SUFFIX, str(i).encode(),
                                 pika.BasicProperties(delivery_mode=2, message_id=str(i)))
    results = migrate_queues(RABBIT_URL, specs(channel))
    assert [(r.queue, r.moved, r.already) for r in results] == [
        (source, 5, False), (dlq, 1, False), (dest_queue(channel, "out"), 0, True)]
    assert set(queue_types(channel).values()) == {"quorum"} and len(queue_types(channel)) == 3
    with pika.BlockingConnection(pika.URLParameters(RABBIT_URL)) as connection:
        ch = connection.channel()
        ch.confirm_delivery()  # the dead-letter queue is bound to its exchange again
        ch.basic_publish(dlq, "", b"dead", mandatory=True)


def test_migrate_queues_refuses_a_queue_with_consumers(channel: str) -> None:
    declare_classic(channel, messages=2)
    with pika.BlockingConnection(pika.URLParameters(RABBIT_URL)) as connection:
        connection.channel().basic_consume(source_queue(channel), lambda *_: None)
        with pytest.raises(ConfigError, match="stop every engine"):
            migrate_queues(RABBIT_URL, specs(channel)[:1])
    assert queue_types(channel)[source_queue(channel)] == "classic"
    with pika.BlockingConnection(pika.URLParameters(RABBIT_URL)) as connection:
        count = connection.channel().queue_declare(source_queue(channel), passive=True)
        assert count.method.message_count == 2


def test_migrate_queues_command_reads_the_channels(channel: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from conduit.cli import main
    from conduit.engine.loader import load_channels
    from conduit.engine.topology import queue_specs
    from tests.support import write_channel

    monkeypatch.delenv("CONDUIT_BUS_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    path = write_channel(tmp_path / "channels", {
        "name": channel, "source": {"type": "mllp", "port": 0},
        "destinations": [{"name": "out", "type": "file", "path": str(tmp_path / "out"),
                          "ordered": True}]})
    declare_classic(channel, messages=4, queues=queue_specs(load_channels([path])[0]))
    result = CliRunner().invoke(main, ["bus", "migrate-queues", str(path),
                                       "--bus-url", RABBIT_URL])
    assert result.exit_code == 0, result.output
    assert f"{source_queue(channel)}: quorum now, 4 message(s) kept" in result.output
    assert set(queue_types(channel).values()) == {"quorum"}


def test_an_engine_upgraded_over_classic_queues_runs_and_reports_them(
        channel: str, tmp_path: Path) -> None:
    """The upgrade itself: queues a version before made (classic) hold a message; the engine
    starts on them, delivers it and new ones, and shows the classic queues to the operator."""
    from conduit.engine.loader import load_channels
    from conduit.engine.topology import queue_specs
    from conduit.ops.health import classic_queues
    from conduit.ops.metrics import EngineCollector
    from tests.rabbit import engine_on, hl7
    from tests.support import MllpReceiver, free_port, mllp_exchange, msa, wait_for, write_channel

    with MllpReceiver() as receiver:
        config = {"name": channel,
                  "source": {"type": "mllp", "host": "127.0.0.1", "port": free_port()},
                  "destinations": [{"name": "out", "type": "mllp", "host": "127.0.0.1",
                                    "port": receiver.port}]}
        path = write_channel(tmp_path / "old", config)
        declare_classic(channel, queues=queue_specs(load_channels([path])[0]))

        async def scenario() -> None:
            with structlog.testing.capture_logs() as logs:
                async with engine_on([config], tmp_path, bus_url=RABBIT_URL) as engine:
                    port = engine.runtimes[channel].source.port
                    for control_id in ("ONE", "TWO"):
                        [ack] = await asyncio.to_thread(mllp_exchange, port, [hl7(control_id)])
                        assert msa(ack)[1] == "AA"
                    await wait_for(lambda: receiver.control_ids() == ["ONE", "TWO"])
                    kept = [source_queue(channel), dest_queue(channel, "out"),
                            dead_letter_queue(channel)]
                    assert classic_queues(engine) == sorted(kept)
                    [gauge] = [m for m in EngineCollector(engine).collect()
                               if m.name == "conduit_bus_classic_queues"]
                    assert gauge.samples[0].value == 3
            assert len([e for e in logs if e["event"] == "rabbitmq queue kept classic"]) == 3

        asyncio.run(scenario())
    assert set(queue_types(channel).values()) == {"classic"}
