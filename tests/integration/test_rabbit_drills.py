"""Failure drills with real processes on the real RabbitMQ and PostgreSQL.

- kill -9 of a worker process mid-stream, listeners and workers being separate ``conduit run
  --role`` processes sharing the queues: nothing acknowledged is lost;
- ``rabbitmqctl stop_app`` / ``start_app`` while a client sends: the source answers AE while the
  broker is down, and everything recovers without restarting the engine.

Each proves the counts add up: every message answered AA reaches the receiver and is SENT in the
store, and the store holds exactly one row per answer given.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.rabbit import RABBIT_URL, delete_channel_queues, hl7, unique_channel
from tests.support import (
    EB,
    SB,
    EngineProcess,
    MllpReceiver,
    free_port,
    msa,
    read_frames,
    wait_until,
    write_channel,
)

pytestmark = pytest.mark.integration


def stream(port: int, prefix: str, answers: dict[str, str], stop: threading.Event,
           pause: float = 0.0) -> None:
    """Send until told to stop, reconnecting when needed; note each answer's code."""
    n = 0
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
                buffer = bytearray()
                while not stop.is_set():
                    control_id = f"{prefix}-{n}"
                    n += 1
                    sock.sendall(SB + hl7(control_id, f"P{n % 7}") + EB)
                    answer = read_frames(sock, buffer)
                    if answer is None:
                        break
                    answers[control_id] = msa(answer)[1]
                    if pause:
                        time.sleep(pause)
        except OSError:
            time.sleep(0.1)


def store_rows(store_url: str, channel: str) -> dict[str, str]:
    """control id → status, read straight from PostgreSQL."""
    engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT control_id, status FROM messages WHERE channel = :c"), {"c": channel})
            return {str(c): str(s) for c, s in rows}
    finally:
        engine.dispose()


@pytest.fixture
def rabbit_channel_name() -> Iterator[str]:
    name = unique_channel("k")
    try:
        yield name
    finally:
        delete_channel_queues(name)


def write(tmp_path: Path, name: str, port: int, receiver: int, **destination: Any) -> Path:
    folder = tmp_path / "channels"
    write_channel(folder, {
        "name": name, "source": {"type": "mllp", "host": "127.0.0.1", "port": port},
        "destinations": [{"name": "out", "type": "mllp", "host": "127.0.0.1", "port": receiver,
                          "retry": {"attempts": 50, "initial": "50ms", "max": "500ms"},
                          **destination}]})
    return folder


def process(tmp_path: Path, folder: Path, store_url: str, role: str, tag: str) -> EngineProcess:
    return EngineProcess(folder, tmp_path / f"data-{tag}",
                         env={"CONDUIT_BUS_URL": RABBIT_URL, "CONDUIT_STORE_URL": store_url,
                              "CONDUIT_DASHBOARD_ENABLED": "false"},
                         args=["--role", role, "--workers", "4"])


def test_kill_9_of_a_worker_process_loses_nothing_acknowledged(
        tmp_path: Path, postgres_url: str, rabbit_channel_name: str) -> None:
    name, port = rabbit_channel_name, free_port()
    slow = lambda m: time.sleep(0.003) or "AA"  # noqa: E731 - a backlog builds up
    with MllpReceiver(answer=slow) as downstream:
        folder = write(tmp_path, name, port, downstream.port)
        workers = [process(tmp_path, folder, postgres_url, "workers", f"w{i}").start()
                   for i in (1, 2)]
        listeners = process(tmp_path, folder, postgres_url, "listeners", "l").start()
        answers: dict[str, str] = {}
        stop = threading.Event()
        clients = [threading.Thread(target=stream, args=(port, f"c{i}", answers, stop))
                   for i in range(4)]
        try:
            for client in clients:
                client.start()
            wait_until(lambda: len(answers) >= 300, 60)
            workers[0].kill()  # mid-stream: it had deliveries in flight
            wait_until(lambda: len(answers) >= 600, 60)
            stop.set()
            for client in clients:
                client.join(20)
            acked = {c for c, code in answers.items() if code == "AA"}
            assert len(acked) == len(answers) >= 600
            wait_until(lambda: acked <= set(downstream.control_ids()), 60)
            wait_until(lambda: set(store_rows(postgres_url, name).values()) == {"SENT"}, 30)
            rows = store_rows(postgres_url, name)
            assert set(rows) == acked  # one row per answer, every one SENT
        finally:
            stop.set()
            listeners.stop()
            for worker in workers[1:]:
                worker.stop()


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


def test_broker_stop_and_start_while_a_client_sends(
        tmp_path: Path, postgres_url: str, rabbit_channel_name: str) -> None:
    name, port = rabbit_channel_name, free_port()
    with MllpReceiver() as downstream:
        folder = write(tmp_path, name, port, downstream.port, ordered=True)
        engine = process(tmp_path, folder, postgres_url, "all", "a").start()
        answers: dict[str, str] = {}
        stop = threading.Event()
        client = threading.Thread(target=stream, args=(port, "b", answers, stop, 0.005))
        try:
            client.start()
            wait_until(lambda: len(answers) >= 100, 30)
            try:
                rabbitmqctl("stop_app")
                wait_until(lambda: "AE" in answers.values(), 30)
                time.sleep(1)
            finally:
                rabbitmqctl("start_app")
            down = sum(1 for code in answers.values() if code == "AE")
            wait_until(lambda: list(answers.values())[-20:] == ["AA"] * 20, 60)
            stop.set()
            client.join(20)
            acked = [c for c, code in answers.items() if code == "AA"]
            assert down > 0 and len(acked) > 120
            wait_until(lambda: set(acked) <= set(downstream.control_ids()), 60)
            rows = store_rows(postgres_url, name)
            assert set(rows) == set(answers)  # one store row per answer given
            assert all(rows[c] == "SENT" for c in acked)
            # Every AE was told to resend: stored as ERROR (never queued) unless its confirm
            # came late, in which case it was delivered too (at-least-once).
            assert all(rows[c] in ("ERROR", "SENT") for c in answers if answers[c] == "AE")
            # Ordered destination: what was acknowledged arrives in the order it was sent.
            received = [c for c in downstream.control_ids() if c in set(acked)]
            firsts = list(dict.fromkeys(received))
            assert firsts == acked
            assert engine.process is not None and engine.process.poll() is None  # no restart
        finally:
            stop.set()
            engine.stop()
