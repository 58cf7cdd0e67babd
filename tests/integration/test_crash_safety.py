"""kill -9 the engine while a client streams: every message that got AA arrives after restart."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

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

TEMPLATE = ("MSH|^~\\&|REG|HOSP|ADT|HOSP|20260101120000||ADT^A01|{id}|P|2.5\r"
            "EVN|A01|20260101120000\rPID|1||{id}^^^HOSP^MR||CRASH^TEST||19800101|F\r")


def stream(port: int, prefix: str, acked: list[str], stop: threading.Event) -> None:
    """Send until the connection breaks or we are told to stop; note every AA."""
    n = 0
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            buffer = bytearray()
            while not stop.is_set():
                control_id = f"{prefix}-{n}"
                sock.sendall(SB + TEMPLATE.format(id=control_id).encode() + EB)
                answer = read_frames(sock, buffer)
                if answer is None:
                    return
                if msa(answer)[1] == "AA":
                    acked.append(control_id)
                n += 1
    except OSError:
        return


def test_kill_9_while_streaming_loses_no_acknowledged_message(tmp_path: Path) -> None:
    port = free_port()
    slow = lambda message: time.sleep(0.002) or "AA"  # noqa: E731 - a backlog builds up
    with MllpReceiver(answer=slow) as downstream:
        write_channel(tmp_path / "channels", {
            "name": "crash",
            "source": {"type": "mllp", "host": "127.0.0.1", "port": port},
            "destinations": [
                {"name": "downstream", "type": "mllp", "host": "127.0.0.1",
                 "port": downstream.port, "retry": {"attempts": 50, "initial": "100ms"}},
                {"name": "archive", "type": "file",
                 "path": str(tmp_path / "out" / "{{ msg['MSH-10'] }}.hl7")},
            ]})
        data = tmp_path / "data"
        engine = EngineProcess(tmp_path / "channels", data).start()
        acked: list[str] = []
        stop = threading.Event()
        clients = [threading.Thread(target=stream, args=(port, f"c{i}", acked, stop))
                   for i in range(4)]
        for client in clients:
            client.start()
        wait_until(lambda: len(acked) >= 400, 60)
        engine.kill()
        stop.set()
        for client in clients:
            client.join(10)
        assert len(acked) >= 400
        delivered_before = set(downstream.control_ids())
        # Some acknowledged messages were still in flight when the engine died.
        assert set(acked) - delivered_before, "the kill came too late to test anything"

        restarted = EngineProcess(tmp_path / "channels", data).start()
        try:
            wait_until(lambda: set(acked) <= set(downstream.control_ids()), 60)
            wait_until(lambda: all((tmp_path / "out" / f"{c}.hl7").exists() for c in acked), 30)
        finally:
            restarted.stop()
        assert "recovered unfinished work" in "".join(restarted.output)


def _descendants(pid: int) -> list[int]:
    from conduit.bench.runner import process_tree

    return [p for p in process_tree(pid) if p != pid]


def test_the_engines_helper_processes_end_with_it(tmp_path: Path) -> None:
    """The store's writing process, the full-text indexer and their fork server stop when the
    engine is killed with -9 (none of them may outlive it, holding the store open)."""
    port = free_port()
    write_channel(tmp_path / "channels", {
        "name": "helpers", "source": {"type": "mllp", "host": "127.0.0.1", "port": port},
        "destinations": [{"name": "archive", "type": "file",
                          "path": str(tmp_path / "out" / "{{ msg['MSH-10'] }}.hl7")}]})
    engine = EngineProcess(tmp_path / "channels", tmp_path / "data").start()
    assert engine.process is not None
    pid = engine.process.pid
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(SB + TEMPLATE.format(id="H1").encode() + EB)
        answer = read_frames(client, bytearray())
        assert answer is not None and msa(answer)[1] == "AA"
    # resource tracker, fork server, writing process, indexer
    wait_until(lambda: len(_descendants(pid)) >= 4, 30)
    helpers = _descendants(pid)
    engine.kill()

    def gone() -> bool:
        return not any(Path(f"/proc/{helper}").exists() for helper in helpers)

    wait_until(gone, 15)
