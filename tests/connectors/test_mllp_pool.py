"""The MLLP destination's connection pool and the read time limits of both MLLP connectors.

The receivers here are small asyncio servers written for the test (ACKs by tests.support, not
by Conduit), running on the test's own loop so that they can count connections and messages in
flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop
from pydantic import ValidationError

from conduit.connectors import mllp
from conduit.connectors.base import ConnectorContext
from conduit.connectors.mllp import (
    MllpDestination,
    MllpDestinationConfig,
    ReadDeadline,
    frame,
)
from conduit.core.errors import RetryableError
from conduit.core.protocols import Outbound
from conduit.hl7.message import Message
from tests.support import EB, SB, ack_for, control_id, msa

RUNNERS: dict[str, Callable[[Coroutine[Any, Any, None]], None]] = {
    "asyncio": asyncio.run, "uvloop": uvloop.run}


def adt(cid: str) -> bytes:
    return (f"MSH|^~\\&|REG|HOSP|ADT|HOSP|20260101120000||ADT^A01^ADT_A01|{cid}|P|2.5\r"
            "PID|1||PAT123^^^HOSP^MR||TESTPATIENT^ALPHA\r").encode()


class Receiver:
    """An MLLP receiver that answers each message after ``delay`` (or never, or ``late``)."""

    def __init__(self, delay: float = 0.0, *, answer: bool = True,
                 close_after: int | None = None) -> None:
        self.delay = delay
        self.answer = answer
        self.close_after = close_after
        self.connections = 0
        self.open = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.received: list[str] = []
        self.closed = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.port = 0
        self.handlers: set[asyncio.Task[None]] = set()
        self.writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> Receiver:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await asyncio.gather(*self.handlers, return_exceptions=True)
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        self.writers.add(writer)
        self.connections += 1
        self.open += 1
        answered = 0
        try:
            while True:
                try:
                    chunk = await reader.readuntil(EB)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                message = chunk[chunk.index(SB) + 1:-2]
                self.received.append(control_id(message))
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                await asyncio.sleep(self.delay)
                self.in_flight -= 1
                if not self.answer:
                    continue
                writer.write(SB + ack_for(message) + EB)
                await writer.drain()
                answered += 1
                if self.close_after is not None and answered >= self.close_after:
                    return
        finally:
            self.open -= 1
            self.closed.set()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def destination(port: int, tmp_path: Path, **options: Any) -> MllpDestination:
    config = MllpDestinationConfig(name="d", type="mllp", host="127.0.0.1", port=port,
                                   **{"ack_timeout": "3s", **options})
    return MllpDestination(config, ConnectorContext("c", tmp_path))


def out(cid: str, n: int = 1, **extra: Any) -> Outbound:
    return Outbound(n, "c", "d", adt(cid), **extra)


def test_connections_option() -> None:
    def config(**options: Any) -> MllpDestinationConfig:
        return MllpDestinationConfig(name="d", type="mllp", host="h", port=1, **options)

    assert config().connections == 1
    assert config(connections=64).connections == 64
    for bad in (0, 65):
        with pytest.raises(ValidationError, match="connections"):
            config(connections=bad)
    field = MllpDestinationConfig.model_fields["connections"]
    assert field.description and field.examples


@pytest.mark.parametrize("connections", [1, 4])
def test_pool_sends_up_to_n_messages_at_once(tmp_path: Path, connections: int) -> None:
    async def scenario() -> None:
        async with Receiver(delay=0.2) as receiver:
            dest = destination(receiver.port, tmp_path, connections=connections)
            ids = [f"P{i}" for i in range(8)]
            started = time.monotonic()
            answers = await asyncio.gather(*(dest.send(out(i)) for i in ids))
            elapsed = time.monotonic() - started
            assert [msa(a)[1:3] for a in answers] == [["AA", i] for i in ids]
            assert sorted(receiver.received) == ids
            assert receiver.connections == connections
            assert receiver.max_in_flight == connections
            assert elapsed >= 8 / connections * 0.2 - 0.05
            if connections > 1:
                assert elapsed < 8 * 0.2  # faster than one at a time
                # a quiet destination keeps using the connection it used last
                before = receiver.connections
                for i in range(3):
                    await dest.send(out(f"Q{i}"))
                assert receiver.connections == before
            else:
                assert receiver.received == ids  # one connection: first come, first served
            await dest.close()
            await asyncio.wait_for(receiver.closed.wait(), 2)
            await asyncio.sleep(0.05)
            assert receiver.open == 0
            # after close() it connects again
            assert msa(await dest.send(out("AFTER")))[1:3] == ["AA", "AFTER"]
            await dest.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("runner", RUNNERS)
def test_ack_timeout_closes_the_connection(tmp_path: Path, runner: str) -> None:
    async def scenario() -> None:
        async with Receiver(answer=False) as receiver:
            dest = destination(receiver.port, tmp_path, ack_timeout="300ms")
            started = time.monotonic()
            with pytest.raises(RetryableError, match="TimeoutError"):
                await dest.send(out("T1"))
            assert 0.25 <= time.monotonic() - started < 2
            await asyncio.wait_for(receiver.closed.wait(), 2)  # not kept for the next message
            assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
            receiver.answer = True
            assert msa(await dest.send(out("T2")))[1:3] == ["AA", "T2"]
            assert receiver.connections == 2
            await dest.close()

    RUNNERS[runner](scenario())


def test_interrupted_send_never_leaves_its_late_ack_for_the_next(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Receiver(delay=0.3) as receiver:
            dest = destination(receiver.port, tmp_path)
            first = asyncio.ensure_future(dest.send(out("LATE")))
            await asyncio.sleep(0.1)
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            receiver.delay = 0
            assert msa(await dest.send(out("NEXT")))[1:3] == ["AA", "NEXT"]
            assert receiver.connections == 2
            await dest.close()

    asyncio.run(scenario())


def test_connection_closed_by_the_receiver_is_replaced(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Receiver(close_after=1) as receiver:
            dest = destination(receiver.port, tmp_path)
            assert msa(await dest.send(out("C1")))[1:3] == ["AA", "C1"]
            await asyncio.wait_for(receiver.closed.wait(), 2)
            await asyncio.sleep(0.05)  # our side sees the end of stream
            assert msa(await dest.send(out("C2")))[1:3] == ["AA", "C2"]
            assert receiver.connections == 2
            await dest.close()

    asyncio.run(scenario())


def test_control_id_from_the_parsed_message(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        async with Receiver() as receiver:
            dest = destination(receiver.port, tmp_path)
            content = adt("M1")

            def no_parse(data: bytes) -> str | None:
                raise AssertionError("parsed again")

            with monkeypatch.context() as patch:
                patch.setattr(mllp, "message_control_id", no_parse)
                answer = await dest.send(Outbound(1, "c", "d", content,
                                                  message=Message.parse(content)))
                assert msa(answer)[1:3] == ["AA", "M1"]
                # a parsed message whose MSH-10 the ACK does not name
                with pytest.raises(RetryableError, match="expected 'OTHER'"):
                    await dest.send(Outbound(2, "c", "d", content,
                                             message=Message.parse(adt("OTHER"))))
            # without it, MSH-10 is read from the bytes; bytes that are not HL7 are not checked
            assert msa(await dest.send(out("M2")))[1:3] == ["AA", "M2"]
            answer = await dest.send(Outbound(3, "c", "d", b"MSH|^|A|B|C|D|2026||ADT|X9|P\r"))
            assert msa(answer)[1:3] == ["AA", "X9"]
            await dest.close()

    asyncio.run(scenario())


# --- ReadDeadline ----------------------------------------------------------------------------


async def reader_with(data: bytes = b"") -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    if data:
        reader.feed_data(data)
    return reader


async def feed_later(reader: asyncio.StreamReader, delays: list[float]) -> None:
    for n, delay in enumerate(delays):
        await asyncio.sleep(delay)
        reader.feed_data(frame(adt(f"F{n}")))


@pytest.mark.parametrize("runner", RUNNERS)
def test_read_deadline_limits_each_read_not_the_connection(runner: str) -> None:
    async def scenario() -> None:
        reader = await reader_with()
        deadline = ReadDeadline(0.25)
        feeder = asyncio.ensure_future(feed_later(reader, [0.1] * 6))
        started = time.monotonic()
        for n in range(6):  # 0.6 s in all, each read 0.1 s
            assert await deadline.read(reader, 2**20) == adt(f"F{n}")
            await asyncio.sleep(0)
        await feeder
        assert time.monotonic() - started > 0.5
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await deadline.read(reader, 2**20)
        assert 0.2 <= time.monotonic() - started < 1
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0
        # usable again after a timeout
        reader.feed_data(frame(adt("AGAIN")))
        assert await deadline.read(reader, 2**20) == adt("AGAIN")
        deadline.close()

    RUNNERS[runner](scenario())


@pytest.mark.parametrize("runner", RUNNERS)
def test_read_deadline_keeps_other_cancellations(runner: str) -> None:
    async def scenario() -> None:
        reader = await reader_with()
        deadline = ReadDeadline(5)
        task = asyncio.ensure_future(deadline.read(reader, 2**20))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        deadline.close()

        # a stop() that comes together with the time limit is still a cancellation
        deadline = ReadDeadline(0.1)

        async def read_then_stop() -> None:
            this = asyncio.current_task()
            assert this is not None
            asyncio.get_running_loop().call_later(0.1, this.cancel)
            await deadline.read(reader, 2**20)

        with pytest.raises(asyncio.CancelledError):
            await read_then_stop()
        deadline.close()

    RUNNERS[runner](scenario())


def test_read_deadline_timer_sleeps_between_reads() -> None:
    async def scenario() -> None:
        reader = await reader_with(frame(adt("A")) * 3)
        deadline = ReadDeadline(0.1)
        await deadline.read(reader, 2**20)
        assert deadline._timer is not None  # set by the first read ...
        await asyncio.sleep(0.2)
        assert deadline._timer is None  # ... and dropped when it found no read going
        await deadline.read(reader, 2**20)
        await deadline.read(reader, 2**20)
        assert deadline._timer is not None
        deadline.close()
        assert deadline._timer is None

    asyncio.run(scenario())


def test_frame() -> None:
    assert frame(b"MSH|x") == b"\x0bMSH|x\x1c\r"
    assert frame(b"") == b"\x0b\x1c\r"


def test_each_ack_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A send reads its ACK once (parse_ack costs ~9 us; it was read twice: once to skip late
    ACKs, once to judge it)."""
    calls = 0
    parse_ack = mllp.parse_ack

    def counting(data: bytes) -> tuple[str, str, str]:
        nonlocal calls
        calls += 1
        return parse_ack(data)

    monkeypatch.setattr(mllp, "parse_ack", counting)

    async def scenario() -> None:
        async with Receiver() as receiver:
            dest = destination(receiver.port, tmp_path)
            for i in range(5):
                assert msa(await dest.send(out(f"R{i}", message=Message.parse(adt(f"R{i}")))))[1] \
                    == "AA"
            await dest.close()

    asyncio.run(scenario())
    assert calls == 5
