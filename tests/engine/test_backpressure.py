"""Backpressure: a channel takes messages no faster than a slow destination sends them (its
queue stays near ``backpressure.queued``), slows its senders without refusing them or losing a
message, and is not held back by a destination that is down."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from conduit.bus.base import dest_queue
from conduit.engine.backpressure import Backpressure, BackpressureSettings
from conduit.ops.metrics import EngineCollector
from tests.ops.helpers import adt
from tests.support import MllpReceiver, free_port, running_engine, source_port, wait_for

SB, EB = b"\x0b", b"\x1c\x0d"
SENDERS, EACH = 8, 50


def slow_channel(port: int, **backpressure: Any) -> dict[str, Any]:
    return {"name": "adt", "source": {"type": "mllp", "host": "127.0.0.1", "port": 0},
            "destinations": [{"name": "downstream", "type": "mllp", "host": "127.0.0.1",
                              "port": port, "retry": {"attempts": 50, "initial": "50ms",
                                                      "max": "100ms"}}],
            **({"backpressure": backpressure} if backpressure else {})}


async def send(port: int, ids: list[str]) -> list[bytes]:
    """One sender: each message on one connection, the next once the last is answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answers = []
    try:
        for control in ids:
            writer.write(SB + adt(control) + EB)
            answers.append(await reader.readuntil(EB))
    finally:
        writer.close()
    return answers


async def load(engine: Any, receiver: MllpReceiver | None) -> dict[str, Any]:
    """SENDERS senders of EACH messages; the deepest the destination's queue got meanwhile, and
    how many the receiver had when the last ACK came back."""
    queue, deepest = dest_queue("adt", "downstream"), 0
    done = asyncio.Event()

    async def watch() -> None:
        nonlocal deepest
        while not done.is_set():
            deepest = max(deepest, engine.bus.depth(queue) or 0)
            await asyncio.sleep(0.002)

    watcher = asyncio.get_running_loop().create_task(watch())
    port, began = source_port(engine, "adt"), time.monotonic()
    answers = await asyncio.gather(*(send(port, [f"S{s}M{m}" for m in range(EACH)])
                                     for s in range(SENDERS)))
    elapsed = time.monotonic() - began
    delivered = len(receiver.control_ids()) if receiver is not None else 0
    done.set()
    await watcher
    codes = [a.split(b"MSA|", 1)[1][:2].decode() for each in answers for a in each]
    return {"codes": codes, "deepest": deepest, "delivered": delivered, "elapsed": elapsed}


def test_a_slow_destination_slows_intake_to_its_pace(tmp_path: Path) -> None:
    """A receiver that takes 5 ms a message, one connection: the senders could hand over 400
    messages in a fraction of a second and the queue would grow by hundreds (the test below).
    With
    ``queued: 20`` it stays near 20, the senders get every ACK (AA: slowed, not refused), the
    ACKs keep pace with the deliveries, and every message arrives."""
    def slowly(_message: bytes) -> str:
        time.sleep(0.005)
        return "AA"

    async def scenario() -> None:
        with MllpReceiver(slowly) as receiver:
            async with running_engine([slow_channel(receiver.port, queued=20, max_wait="5s")],
                                      tmp_path) as engine:
                seen = await load(engine, receiver)
                gate = engine.runtimes["adt"].backpressure
                scraped = {sample.name: sample.value
                           for family in EngineCollector(engine).collect()
                           for sample in family.samples}
                await wait_for(lambda: len(set(receiver.control_ids())) == SENDERS * EACH,
                               timeout=30)
                await wait_for(lambda: engine.store.counts()["adt"].get("SENT")
                               == SENDERS * EACH, timeout=10)
        assert seen["codes"] == ["AA"] * SENDERS * EACH
        # the senders waiting are let in together once it is back under: one each past it
        assert seen["deepest"] <= 20 + SENDERS + 2, seen
        assert gate.held > 0
        # operators see it: /metrics counts the messages held back and how long they waited
        assert scraped["conduit_backpressure_waits_total"] == gate.held
        assert 0 < scraped["conduit_backpressure_wait_seconds_total"] == gate.held_seconds
        # acknowledged no faster than delivered: when the last ACK came, what was acknowledged
        # and not yet delivered is the queue (<= 30) plus what the destination's workers hold
        # (64); without backpressure the receiver had a tenth of them then
        assert seen["delivered"] >= 0.6 * SENDERS * EACH, seen

    asyncio.run(scenario())


@pytest.mark.parametrize("rate_limited", [False, True], ids=["turned-off", "rate-limited"])
def test_backpressure_turned_off_lets_the_queue_grow(tmp_path: Path, rate_limited: bool) -> None:
    """``backpressure: {queued: null}``: the old behaviour, the backlog piles up in the queue
    (which is what the test above shows it no longer does); and so it does for a destination
    whose rate limit keeps a queue on purpose."""
    def slowly(_message: bytes) -> str:
        time.sleep(0.02)
        return "AA"

    async def scenario() -> None:
        with MllpReceiver(slowly) as receiver:
            channel = (slow_channel(receiver.port, queued=20) if rate_limited
                       else slow_channel(receiver.port, queued=None))
            if rate_limited:
                channel["destinations"][0]["rate_limit"] = "100/s"
            async with running_engine([channel], tmp_path) as engine:
                seen = await load(engine, receiver)
                assert engine.runtimes["adt"].backpressure.held == 0
        assert seen["codes"] == ["AA"] * SENDERS * EACH
        assert seen["deepest"] > 100, seen

    asyncio.run(scenario())


def test_a_destination_that_is_down_holds_nothing_back(tmp_path: Path) -> None:
    """Nothing listens at the destination's port: its queue grows (store and forward) while
    the senders are answered at once, however low the bound."""
    async def scenario() -> None:
        async with running_engine([slow_channel(free_port(), queued=5, max_wait="5s")],
                                  tmp_path) as engine:
            seen = await load(engine, None)
            assert engine.runtimes["adt"].backpressure.held == 0
        assert seen["codes"] == ["AA"] * SENDERS * EACH
        assert seen["deepest"] > 100 and seen["elapsed"] < 5, seen

    asyncio.run(scenario())


def test_the_bound_is_a_channel_option_with_a_default() -> None:
    from conduit.engine.channel import channel_model

    model = channel_model()
    base = {"name": "adt", "source": {"type": "mllp", "port": 0},
            "destinations": [{"name": "a", "type": "file", "path": "out/x.hl7"}]}
    default = model.model_validate(base).backpressure
    assert (default.queued, default.max_wait) == (1000, 2.0)
    chosen = model.model_validate({**base, "backpressure": {"queued": 50, "max_wait": "500ms"}})
    assert (chosen.backpressure.queued, chosen.backpressure.max_wait) == (50, 0.5)
    assert model.model_validate({**base, "backpressure": {"queued": None}}
                                ).backpressure.queued is None
    for wrong in ({"queued": 0}, {"queue": 10}):
        with pytest.raises(ValidationError):
            model.model_validate({**base, "backpressure": wrong})


def test_the_gate_waits_for_the_queue_to_shrink_at_most_max_wait() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        backlog = [5]
        gate = Backpressure(BackpressureSettings(queued=3, max_wait=0.2), lambda: backlog[0])
        began = loop.time()
        await gate.admit()  # over, and it stays over: taken anyway after max_wait
        assert 0.19 <= loop.time() - began < 1 and gate.held == 1
        loop.call_later(0.05, backlog.__setitem__, 0, 3)
        began = loop.time()
        await asyncio.gather(gate.admit(), gate.admit())  # both in once it is back under
        assert 0.04 <= loop.time() - began < 0.15 and gate.held == 3
        await asyncio.sleep(0.01)
        began = loop.time()
        await gate.admit()  # under: at once
        assert loop.time() - began < 0.01 and gate.held == 3

        def broken() -> int:
            raise RuntimeError("no depth")

        await Backpressure(BackpressureSettings(queued=1, max_wait=5), broken).admit()

    asyncio.run(scenario())
