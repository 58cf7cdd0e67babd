"""No starved senders (issue 17, item 3): slow or greedy clients cannot hold the MLLP listener.

A frame must be complete within ``frame_timeout`` of its first byte however slowly it trickles;
one address holds at most ``max_connections_per_client`` connections; a connection over a limit
is closed at once (never held waiting for a slot)."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import sys
import time
from pathlib import Path
from typing import Any

from tests.support import EB, SB, msa, running_engine, source_port

ADT = (b"MSH|^~\\&|REG|HOSP|ADT|HOSP|20260101120000||ADT^A01|{id}|P|2.5\r"
       b"PID|1||PAT123^^^HOSP^MR||TESTPATIENT^ALPHA||19800101|F\r")

GOOD_SENDER = "127.0.0.2"  # another address on Linux's loopback (127.0.0.0/8)
SLOW_CONNECTIONS = 2000


def channel(**source: Any) -> dict[str, Any]:
    return {"name": "adt", "source": {"type": "mllp", "host": "127.0.0.1", "port": 0, **source},
            "destinations": [{"name": "nowhere", "type": "file", "path": "out/{{ id }}.hl7",
                              "when": {"field": "MSH-9.1", "equals": "NONE"}}]}


def _room_for(descriptors: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards the hard one; how many slow connections fit
    (each costs two descriptors here: the client's and the listener's)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = descriptors + 512
    if soft < wanted:
        ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
        soft = ceiling
    return max(0, min(SLOW_CONNECTIONS, (soft - 512) // 2))


#: The slow sender, in a process of its own: ``count`` connections to ``port``, each inside a
#: frame that never ends (or a request: the third argument, the first bytes sent), a byte sent
#: on some of them every few ms; prints how many it opened, then, for each line read, how many
#: the listener has not closed.
SLOW_CLIENT = """
import select, socket, sys, threading
port, count = int(sys.argv[1]), int(sys.argv[2])
first = sys.argv[3].encode() if len(sys.argv) > 3 else b"\\x0bMSH|"
socks = []
for _ in range(count):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(first)
        socks.append(s)
    except OSError:
        pass
print(len(socks), flush=True)
stop = threading.Event()
def trickle():
    n = 0
    while not stop.wait(0.005):
        n += 1
        try:
            socks[n % len(socks)].send(b"x")
        except OSError:
            pass
threading.Thread(target=trickle, daemon=True).start()
for line in sys.stdin:
    still = 0
    for s in socks:
        s.setblocking(False)
        try:
            still += s.recv(1) != b""
        except BlockingIOError:
            still += 1
        except OSError:
            pass
    print(still, flush=True)
stop.set()
"""

async def _ack(port: int, control_id: str, local: str | None = None) -> tuple[bytes, float]:
    began = time.perf_counter()
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, local_addr=(local, 0) if local else None)
    try:
        writer.write(SB + ADT.replace(b"{id}", control_id.encode()) + EB)
        await writer.drain()
        answer = await asyncio.wait_for(reader.readuntil(EB), 5)
    finally:
        writer.close()
    return answer, time.perf_counter() - began


def test_two_thousand_trickling_connections_do_not_starve_another_sender(
        tmp_path: Path) -> None:
    """The drill: 2,000 connections from one address, each inside a frame and trickling a byte
    now and then, while a sender on another address keeps getting AA within 100 ms."""
    count = _room_for(2 * SLOW_CONNECTIONS)
    assert count >= 1100, "the machine's descriptor limit is too low for this drill"

    async def scenario() -> None:
        async with running_engine([channel()], tmp_path) as engine:
            port = source_port(engine, "adt")
            # the slow client is another process (as it would be): it costs this loop nothing
            slow = await asyncio.create_subprocess_exec(
                sys.executable, "-c", SLOW_CLIENT, str(port), str(count),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
            assert slow.stdin is not None and slow.stdout is not None
            try:
                opened = int(await asyncio.wait_for(slow.stdout.readline(), 60))
                assert opened >= 1000
                worst = 0.0
                for n in range(20):  # meanwhile the slow client trickles a byte now and then
                    answer, took = await _ack(port, f"GOOD{n}", local=GOOD_SENDER)
                    assert msa(answer.strip(SB + EB))[1:3] == ["AA", f"GOOD{n}"]
                    worst = max(worst, took)
                    await asyncio.sleep(0.05)
                assert worst < 0.1, f"slowest AA took {worst * 1000:.0f} ms"
                # the greedy address holds no more than its share; the rest were closed at once
                slow.stdin.write(b"count\n")
                still_open = int(await asyncio.wait_for(slow.stdout.readline(), 30))
                assert still_open <= 64
            finally:
                slow.stdin.close()
                with contextlib.suppress(ProcessLookupError):
                    slow.kill()
                await slow.wait()
    asyncio.run(scenario())


def test_a_frame_must_complete_within_frame_timeout_however_it_trickles(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_engine([channel(frame_timeout="400ms", idle_timeout="1m")],
                                  tmp_path) as engine:
            port = source_port(engine, "adt")
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            began = time.monotonic()
            writer.write(SB + b"MSH|")
            for _ in range(30):  # a byte every 100 ms: never idle, never done
                await asyncio.sleep(0.1)
                if reader.at_eof():
                    break
                with contextlib.suppress(OSError):
                    writer.write(b"x")
                    await writer.drain()
                with contextlib.suppress(TimeoutError):
                    if await asyncio.wait_for(reader.read(), 0.001) == b"":
                        break
            took = time.monotonic() - began
            writer.close()
            assert took < 1.5, f"a trickling frame held its connection {took:.1f} s"
            # a connection waiting between frames keeps the longer idle limit
            answer, _ = await _ack(port, "AFTER")
            assert msa(answer.strip(SB + EB))[1] == "AA"
    asyncio.run(scenario())


def test_connections_over_the_per_client_limit_are_closed_at_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_engine([channel(max_connections_per_client=2)], tmp_path) as engine:
            port = source_port(engine, "adt")
            held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await asyncio.wait_for(reader.read(), 2) == b""  # closed, not held
            writer.close()
            # another address is not counted against this one
            answer, _ = await _ack(port, "OTHER", local=GOOD_SENDER)
            assert msa(answer.strip(SB + EB))[1] == "AA"
            # a held connection still works, and a closed one frees its place
            held[0][1].close()
            await asyncio.sleep(0.1)
            answer, _ = await _ack(port, "FREED")
            assert msa(answer.strip(SB + EB))[1] == "AA"
            for _, w in held:
                w.close()
    asyncio.run(scenario())


def test_a_full_listener_closes_new_connections_instead_of_holding_them(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_engine([channel(max_connections=2)], tmp_path) as engine:
            port = source_port(engine, "adt")
            held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
            reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                           local_addr=(GOOD_SENDER, 0))
            assert await asyncio.wait_for(reader.read(), 2) == b""
            writer.close()
            for _, w in held:
                w.close()
    asyncio.run(scenario())
