"""`conduit run` with a port already taken: one line naming the port and the setting, exit 1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import free_port, write_channel


@pytest.fixture
def taken() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def run_conduit(tmp_path: Path, source_port: int,
                dashboard_port: int) -> subprocess.CompletedProcess[str]:
    write_channel(tmp_path / "channels", {
        "name": "adt", "source": {"type": "mllp", "host": "127.0.0.1", "port": source_port},
        "destinations": [{"name": "f", "type": "file",
                          "path": str(tmp_path / "out" / "{{ id }}")}]})
    env = {**os.environ, "CONDUIT_DATA_DIR": str(tmp_path / "data"),
           "CONDUIT_DASHBOARD_HOST": "127.0.0.1", "CONDUIT_DASHBOARD_PORT": str(dashboard_port)}
    return subprocess.run([sys.executable, "-m", "conduit", "run", str(tmp_path / "channels")],
                          capture_output=True, text=True, timeout=60, env=env)


def test_dashboard_port_in_use(tmp_path: Path, taken: int) -> None:
    result = run_conduit(tmp_path, free_port(), taken)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("conduit:")]
    assert len(errors) == 1, result.stderr
    assert f"127.0.0.1:{taken}" in errors[0]
    assert "dashboard.port" in errors[0] and "CONDUIT_DASHBOARD_PORT" in errors[0]


def test_channel_source_port_in_use(tmp_path: Path, taken: int) -> None:
    result = run_conduit(tmp_path, taken, free_port())
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("conduit:")]
    assert len(errors) == 1, result.stderr
    assert f"channel adt: cannot listen on 127.0.0.1:{taken} (address already in use)" in errors[0]
    assert "'source.port'" in errors[0] and "adt" in errors[0]
