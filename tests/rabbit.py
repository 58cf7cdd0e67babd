"""Helpers for tests that talk to the local RabbitMQ (never mocked)."""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pika
import pika.exceptions

RABBIT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def unique_channel(prefix: str = "t") -> str:
    """A channel name no other test (or earlier run) has used: its queues are new."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def queue_names(channel: str) -> list[str]:
    """Every queue of ``channel`` the broker has (source, destinations, partitions, DLQ)."""
    out = subprocess.run(["rabbitmqctl", "list_queues", "-q", "--no-table-headers", "name"],
                         capture_output=True, text=True, timeout=60, check=False).stdout
    return [line.strip() for line in out.splitlines()
            if line.strip().startswith(f"conduit.{channel}.")]


def delete_channel_queues(channel: str, suffixes: list[str] | None = None) -> None:
    """Remove a test channel's queues and dead-letter exchange from the broker: those named
    ``conduit.<channel>.<suffix>`` (fast), or every one the broker lists (about a second)."""
    with contextlib.suppress(pika.exceptions.AMQPError, OSError):
        connection = pika.BlockingConnection(pika.URLParameters(RABBIT_URL))
        names = ([f"conduit.{channel}.{suffix}" for suffix in [*suffixes, "dlq"]]
                 if suffixes is not None else queue_names(channel))
        try:
            for name in names:
                connection.channel().queue_delete(name)
            connection.channel().exchange_delete(f"conduit.{channel}.dlq")
        finally:
            connection.close()


def get_all(queue: str) -> list[tuple[str | None, bytes]]:
    """Drain ``queue`` with basic.get: (message id, body) pairs."""
    got = []
    connection = pika.BlockingConnection(pika.URLParameters(RABBIT_URL))
    try:
        channel = connection.channel()
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return got
            got.append((properties.message_id, body))
    finally:
        connection.close()


@contextlib.contextmanager
def rabbit_channel(prefix: str = "t") -> Iterator[str]:
    """A fresh channel name whose queues are deleted afterwards."""
    name = unique_channel(prefix)
    try:
        yield name
    finally:
        delete_channel_queues(name)


HL7 = ("MSH|^~\\&|REG|HOSP|ADT|HOSP|20260101120000||ADT^A01|{id}|P|2.5\r"
       "EVN|A01|20260101120000\rPID|1||{pid}^^^HOSP^MR||DRILL^TEST||19800101|F\r")


def hl7(control_id: str, patient: str = "P1") -> bytes:
    return HL7.format(id=control_id, pid=patient).encode()


@contextlib.asynccontextmanager
async def engine_on(channels: list[dict[str, Any]], tmp_path: Path, *, bus_url: str | None,
                    store_url: str | None = None, workers: int | None = None,
                    **settings: Any) -> AsyncIterator[Any]:
    """An Engine in this event loop on the given bus and store (dashboard off; ``settings``:
    any other)."""
    from conduit.engine.engine import Engine
    from conduit.engine.loader import load_channels
    from conduit.engine.settings import Settings
    from tests.support import write_channel

    paths = [write_channel(tmp_path / "channels", c) for c in channels]
    extra: dict[str, Any] = {"dashboard": {"enabled": False}} \
        if "dashboard" in Settings.model_fields else {}
    engine = Engine(Settings(data_dir=tmp_path / "data", store_url=store_url, bus_url=bus_url,
                             workers=workers or 8, **extra, **settings), load_channels(paths))
    if bus_url:
        engine.bus.redelivery_delay = 0.05
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()
