"""Test partners over real sockets: an MLLP receiver, and an engine run in-process or as a
subprocess. Their ACKs are built by hand, not by Conduit's code, so they check it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

SB, EB = b"\x0b", b"\x1c\x0d"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def control_id(message: bytes) -> str:
    """MSH-10, read the simple way (the test's own, independent of Conduit's parser)."""
    first = message.replace(b"\n", b"\r").split(b"\r", 1)[0].decode("latin-1")
    fields = first.split(first[3])
    return fields[9] if len(fields) > 9 else ""


def ack_for(message: bytes, code: str = "AA") -> bytes:
    first = message.replace(b"\n", b"\r").split(b"\r", 1)[0].decode("latin-1")
    sep = first[3]
    return (f"MSH{sep}^~\\&{sep}RECV{sep}RF{sep}SEND{sep}SF{sep}20260101000000{sep}{sep}ACK"
            f"{sep}A{control_id(message)}{sep}P{sep}2.5\rMSA{sep}{code}{sep}"
            f"{control_id(message)}\r").encode()


def read_frames(sock: socket.socket, buffer: bytearray) -> bytes | None:
    while EB not in buffer:
        data = sock.recv(65536)
        if not data:
            return None
        buffer.extend(data)
    end = buffer.index(EB)
    frame = bytes(buffer[:end])
    del buffer[: end + 2]
    return frame[frame.index(SB) + 1:] if SB in frame else frame


class MllpReceiver:
    """A downstream MLLP system in a thread: records what it gets, answers ``answer(msg)``."""

    def __init__(self, answer: Callable[[bytes], str] = lambda m: "AA", port: int = 0) -> None:
        self.answer = answer
        self.messages: list[bytes] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                buffer = bytearray()
                while True:
                    try:
                        message = read_frames(self.request, buffer)
                    except OSError:
                        return
                    if message is None:
                        return
                    with receiver.lock:
                        receiver.messages.append(message)
                    code = receiver.answer(message)
                    if code == "silent":
                        continue
                    self.request.sendall(SB + ack_for(message, code) + EB)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> MllpReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def control_ids(self) -> list[str]:
        with self.lock:
            return [control_id(m) for m in self.messages]


def mllp_exchange(port: int, payloads: list[bytes], timeout: float = 10.0) -> list[bytes]:
    """Send raw MLLP frames on one connection; return each answer's payload."""
    answers = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        buffer = bytearray()
        for payload in payloads:
            sock.sendall(SB + payload + EB)
            answer = read_frames(sock, buffer)
            assert answer is not None, "connection closed without an answer"
            answers.append(answer)
    return answers


def msa(ack: bytes) -> list[str]:
    """The MSA segment's fields of an ACK (index 1 = code, 2 = control id)."""
    for segment in ack.replace(b"\n", b"\r").split(b"\r"):
        if segment.startswith(b"MSA"):
            text = segment.decode("latin-1")
            return text.split(text[3])
    raise AssertionError(f"no MSA in {ack!r}")


def write_channel(folder: Path, channel: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{channel['name']}.yaml"
    path.write_text(yaml.safe_dump(channel, sort_keys=False))
    return path


def write_archive_channel(tmp_path: Path, name: str, file_name: str = "{{ id }}.hl7") -> int:
    """The simplest channel for tests that only need AAs: an MLLP listener on a free port
    archiving each message under ``tmp_path/out``; written to ``tmp_path/channels``. Its port."""
    port = free_port()
    write_channel(tmp_path / "channels", {
        "name": name, "source": {"type": "mllp", "host": "127.0.0.1", "port": port},
        "destinations": [{"name": "archive", "type": "file",
                          "path": str(tmp_path / "out" / file_name)}]})
    return port


@contextlib.asynccontextmanager
async def running_engine(channels: list[dict[str, Any]], tmp_path: Path,
                         store_url: str | None = None,
                         dashboard: dict[str, Any] | None = None) -> AsyncIterator[Any]:
    """An Engine in this event loop with the given channel dicts; yields it once listening.
    The dashboard is off unless ``dashboard`` settings are given (then on a free port)."""
    from conduit.engine.engine import Engine
    from conduit.engine.loader import load_channels
    from conduit.engine.settings import Settings
    from conduit.ops.attach import attach

    folder = tmp_path / "channels"
    paths = [write_channel(folder, c) for c in channels]
    settings = Settings(data_dir=tmp_path / "data", store_url=store_url,
                        dashboard={"port": 0, **dashboard} if dashboard is not None
                        else {"enabled": False})
    engine = Engine(settings, load_channels(paths))
    attach(engine)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


def source_port(engine: Any, channel: str) -> int:
    return int(engine.runtimes[channel].source.port)


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


class EngineProcess:
    """``conduit run`` as a real subprocess, for crash and CLI tests."""

    def __init__(self, channel_dir: Path, data_dir: Path, env: dict[str, str] | None = None,
                 args: list[str] | None = None) -> None:
        self.channel_dir = channel_dir
        self.data_dir = data_dir
        self.env = {**os.environ, "CONDUIT_DATA_DIR": str(data_dir),
                    "CONDUIT_DASHBOARD_PORT": "0", **(env or {})}
        self.args = args or []
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self, timeout: float = 30.0) -> EngineProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "conduit", "run", str(self.channel_dir), *self.args],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                self.process.wait(5)
                self.process.stdout.close()
                raise AssertionError("engine exited:\n" + "".join(self.output))
            self.output.append(line)
            if "conduit: ready" in line:
                self._drainer = threading.Thread(target=self._drain, daemon=True)
                self._drainer.start()
                return self
        raise AssertionError("engine not ready in time:\n" + "".join(self.output))

    def _drain(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def kill(self) -> None:
        """kill -9: no chance to flush or clean up."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._close()

    def _close(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        if getattr(self, "_drainer", None) is not None:
            self._drainer.join(5)
        self.process.stdout.close()

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            self._close()
        return int(self.process.returncode)


@contextlib.contextmanager
def engine_process(channel_dir: Path, data_dir: Path, **kwargs: Any) -> Iterator[EngineProcess]:
    process = EngineProcess(channel_dir, data_dir, **kwargs).start()
    try:
        yield process
    finally:
        if process.process and process.process.poll() is None:
            process.stop()
