"""No starved senders on the HTTP listeners (issue 17, item 3): a request must arrive whole
within ``request_timeout`` of its first byte (answered 408 otherwise), one address holds at
most ``max_connections_per_client`` connections, and trickling clients from one address do
not keep another sender waiting."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

from tests.connectors.test_mllp_limits import GOOD_SENDER, SLOW_CLIENT, _room_for
from tests.support import running_engine, source_port

BODY = b'{"resourceType": "Patient", "id": "p1"}'


def rest(**source: Any) -> dict[str, Any]:
    return {"name": "rest", "data_type": "json",
            "source": {"type": "http", "host": "127.0.0.1", "port": 0, "path": "/in", **source},
            "destinations": [{"name": "archive", "type": "file", "path": "out/{{ id }}.json"}]}


async def _post(port: int, local: str | None = None) -> tuple[bytes, float]:
    began = time.perf_counter()
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, local_addr=(local, 0) if local else None)
    try:
        writer.write(b"POST /in HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                     b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(BODY), BODY))
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()
    return status, time.perf_counter() - began


def test_a_request_trickling_its_headers_is_answered_408(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_engine([rest(request_timeout="400ms")], tmp_path) as engine:
            port = source_port(engine, "rest")
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            began = time.monotonic()
            writer.write(b"POST /in HTTP/1.1\r\n")
            answer = b""
            for _ in range(30):  # a header byte every 100 ms: never done
                await asyncio.sleep(0.1)
                with contextlib.suppress(OSError):
                    writer.write(b"x")
                with contextlib.suppress(TimeoutError):
                    answer = await asyncio.wait_for(reader.read(), 0.001)
                    break
            writer.close()
            assert answer.startswith(b"HTTP/1.1 408"), answer
            assert time.monotonic() - began < 1.5
            status, _ = await _post(port)
            assert status.startswith(b"HTTP/1.1 202")
    asyncio.run(scenario())


def test_a_body_that_never_ends_is_answered_408(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_engine([rest(request_timeout="400ms")], tmp_path) as engine:
            port = source_port(engine, "rest")
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /in HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                         b"content-length: 100\r\n\r\n{")
            answer = await asyncio.wait_for(reader.read(), 3)
            writer.close()
            assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer
    asyncio.run(scenario())


def test_http_connections_over_the_per_client_limit_are_closed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_engine([rest(max_connections_per_client=2)], tmp_path) as engine:
            port = source_port(engine, "rest")
            held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await asyncio.wait_for(reader.read(), 2) == b""
            writer.close()
            status, _ = await _post(port, local=GOOD_SENDER)
            assert status.startswith(b"HTTP/1.1 202")
            for _, w in held:
                w.close()
    asyncio.run(scenario())


def test_a_thousand_trickling_http_connections_do_not_starve_another_sender(
        tmp_path: Path) -> None:
    count = min(1000, _room_for(2000))
    assert count >= 1000

    async def scenario() -> None:
        async with running_engine([rest()], tmp_path) as engine:
            port = source_port(engine, "rest")
            slow = await asyncio.create_subprocess_exec(
                sys.executable, "-c", SLOW_CLIENT, str(port), str(count), "POST /in HTTP/1.1\r\n",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
            assert slow.stdin is not None and slow.stdout is not None
            try:
                assert int(await asyncio.wait_for(slow.stdout.readline(), 60)) >= 1000
                worst = 0.0
                for _ in range(20):
                    status, took = await _post(port, local=GOOD_SENDER)
                    assert status.startswith(b"HTTP/1.1 202")
                    worst = max(worst, took)
                    await asyncio.sleep(0.05)
                assert worst < 0.2, f"slowest answer took {worst * 1000:.0f} ms"
                slow.stdin.write(b"count\n")
                assert int(await asyncio.wait_for(slow.stdout.readline(), 30)) <= 64
            finally:
                slow.stdin.close()
                with contextlib.suppress(ProcessLookupError):
                    slow.kill()
                await slow.wait()
    asyncio.run(scenario())
