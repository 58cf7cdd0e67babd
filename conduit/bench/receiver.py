"""A fast MLLP receiver for benchmarks: answers AA at once, counts, reports when done.

Run as ``python -m conduit.bench.receiver PORT``; it prints ``listening PORT`` once ready and,
for each line ``expect N`` on its stdin, prints ``done N <unix time>`` when N messages have arrived,
and for ``count``, ``count N <unix time>`` at once (how many so far: the delivered rate while the
load is still applied, not after a drain).
Used both as the engine's downstream and, alone, as the raw-echo baseline.
"""

from __future__ import annotations

import asyncio
import sys
import time

START, END = b"\x0b", b"\x1c\x0d"


class Counter:
    def __init__(self) -> None:
        self.count = 0
        self.target: int | None = None
        self.reached = asyncio.Event()

    def add(self) -> None:
        self.count += 1
        if self.target is not None and self.count >= self.target:
            self.reached.set()


def ack_for(message: bytes) -> bytes:
    """AA echoing MSH-10, built with bytes operations (the baseline must be cheap)."""
    header = message.split(b"\r", 1)[0]
    sep = header[3:4]
    fields = header.split(sep)
    control = fields[9] if len(fields) > 9 else b""
    return (START + b"MSH" + sep + b"^~\\&" + sep + b"BENCH" + sep + sep + sep + sep
            + b"20260101000000" + sep + sep + b"ACK" + sep + b"B" + control + sep + b"P" + sep
            + b"2.5\rMSA" + sep + b"AA" + sep + control + b"\r" + END)


async def serve(port: int) -> None:
    counter = Counter()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                frame = await reader.readuntil(END)
                message = frame[frame.find(START) + 1: -2]
                counter.add()
                writer.write(ack_for(message))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, limit=2**24, backlog=512)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while line := await stdin.readline():
        words = line.split()
        if words[:1] == [b"expect"]:
            counter.target = int(words[1])
            counter.reached.clear()
            if counter.count >= counter.target:
                counter.reached.set()
            await counter.reached.wait()
            print(f"done {counter.count} {time.time():.6f}", flush=True)
        elif words[:1] == [b"count"]:
            print(f"count {counter.count} {time.time():.6f}", flush=True)
        elif words[:1] == [b"reset"]:
            counter.count = 0
            print("reset", flush=True)
    server.close()


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(serve(port))
    else:
        uvloop.run(serve(port))


if __name__ == "__main__":
    main()
