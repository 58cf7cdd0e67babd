"""A redeploy keeps the listener answering (issue 17, item 10).

Changing a channel (``conduit run --watch`` deploys it again) while its receiver is down used to
refuse MLLP connections for up to 30 s: the old source closed, then the controller waited for
the old runtime's in-flight deliveries (retrying a receiver that is down) before the new source
listened. The new source now takes the listening socket over at once; the old deliveries drain
behind it; a message already inside the old listener is answered."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tests.support import EB, SB, free_port, msa, running_engine, wait_for, write_channel

ADT = (b"MSH|^~\\&|REG|HOSP|ADT|HOSP|20260101120000||ADT^A01|{id}|P|2.5\r"
       b"PID|1||PAT123^^^HOSP^MR||TESTPATIENT^ALPHA||19800101|F\r")


def message(control_id: str) -> bytes:
    return ADT.replace(b"{id}", control_id.encode())


def channel(port: int, down: int, version: str) -> dict[str, Any]:
    """An MLLP channel whose receiver (port ``down``) refuses every connection."""
    return {"name": "adt", "description": version,
            "source": {"type": "mllp", "host": "127.0.0.1", "port": port},
            "destinations": [{"name": "lab", "type": "mllp", "host": "127.0.0.1", "port": down,
                              "connect_timeout": "1s",
                              "retry": {"attempts": 100, "initial": "200ms", "max": "200ms"}}]}


async def _ack(port: int, control_id: str, within: float) -> bytes:
    """Connect (again, while refused) and send; the ACK, all within ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)
    try:
        writer.write(SB + message(control_id) + EB)
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(EB),
                                      max(0.01, deadline - time.monotonic()))
    finally:
        writer.close()


def test_a_sender_right_after_a_redeploy_gets_aa_while_the_receiver_is_down(
        tmp_path: Path) -> None:
    from conduit.engine.loader import load_channel

    port, down = free_port(), free_port()

    async def scenario() -> None:
        async with running_engine([channel(port, down, "v1")], tmp_path) as engine:
            # a delivery in flight: retrying the receiver that is down
            answer = await _ack(port, "BEFORE", 5)
            assert msa(answer.strip(SB + EB))[1:3] == ["AA", "BEFORE"]
            await asyncio.sleep(0.3)
            changed = load_channel(write_channel(tmp_path / "channels",
                                                 channel(port, down, "v2")))
            began = time.monotonic()
            deploying = asyncio.create_task(engine.control.deploy(changed))
            await asyncio.sleep(0.01)  # the redeploy is under way
            answer = await _ack(port, "AFTER", 1.0)
            assert msa(answer.strip(SB + EB))[1:3] == ["AA", "AFTER"]
            assert time.monotonic() - began < 1.0
            await asyncio.wait_for(deploying, 5)
            assert engine.control.channels["adt"].description == "v2"
            # both wait for the receiver, stored and queued
            stored = {r.control_id: r.status for r in engine.store.search(channel="adt")}
            assert stored == {"BEFORE": "QUEUED", "AFTER": "QUEUED"}
    asyncio.run(scenario())


def test_a_message_inside_the_old_listener_is_answered_across_a_redeploy(
        tmp_path: Path) -> None:
    from conduit.engine.loader import load_channel

    port, down = free_port(), free_port()

    async def scenario() -> None:
        async with running_engine([channel(port, down, "v1")], tmp_path) as engine:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            whole = SB + message("INFLIGHT") + EB
            writer.write(whole[:20])  # half a message when the redeploy starts
            await writer.drain()
            await asyncio.sleep(0.1)
            changed = load_channel(write_channel(tmp_path / "channels",
                                                 channel(port, down, "v2")))
            deploying = asyncio.create_task(engine.control.deploy(changed))
            await asyncio.sleep(0.2)
            writer.write(whole[20:])
            await writer.drain()
            answer = await asyncio.wait_for(reader.readuntil(EB), 3)
            assert msa(answer.strip(SB + EB))[1:3] == ["AA", "INFLIGHT"]
            writer.close()
            await asyncio.wait_for(deploying, 10)
            await wait_for(lambda: len(engine.store.search(control_id="INFLIGHT")) == 1)
    asyncio.run(scenario())


def test_an_http_listener_is_taken_over_by_its_redeployed_channel(tmp_path: Path) -> None:
    from conduit.engine.loader import load_channel

    port = free_port()

    def rest(version: str) -> dict[str, Any]:
        return {"name": "rest", "description": version, "data_type": "json",
                "source": {"type": "http", "host": "127.0.0.1", "port": port, "path": "/in"},
                "destinations": [{"name": "archive", "type": "file",
                                  "path": str(tmp_path / "out" / "{{ id }}.json")}]}

    async def post() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b'POST /in HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n'
                         b'content-length: 2\r\nconnection: close\r\n\r\n{}')
            return await asyncio.wait_for(reader.readline(), 5)
        finally:
            writer.close()

    async def scenario() -> None:
        async with running_engine([rest("v1")], tmp_path) as engine:
            assert (await post()).startswith(b"HTTP/1.1 202")
            changed = load_channel(write_channel(tmp_path / "channels", rest("v2")))
            await asyncio.wait_for(engine.control.deploy(changed), 10)
            assert engine.control.state("rest") == "started"
            assert engine.control.channels["rest"].description == "v2"
            assert (await post()).startswith(b"HTTP/1.1 202")
    asyncio.run(scenario())
