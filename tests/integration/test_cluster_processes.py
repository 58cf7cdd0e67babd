"""Issue 16, item 4, end to end: two ``conduit run --role workers`` processes sharing RabbitMQ
and PostgreSQL hold one destination's ``rate_limit`` between them (real processes, the local
RabbitMQ and PostgreSQL, an MLLP receiver timing what it gets)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.rabbit import RABBIT_URL, delete_channel_queues, hl7, unique_channel
from tests.support import (
    EngineProcess,
    MllpReceiver,
    free_port,
    mllp_exchange,
    msa,
    wait_until,
    write_channel,
)

pytestmark = pytest.mark.integration


def test_two_worker_processes_share_one_rate_limit(tmp_path: Path, postgres_url: str) -> None:
    """600/min is 10 sends a second for both workers together: 6 s of sends after the first
    hold 61 within 5 % (each process on its own limit would send about 121)."""
    name, port = unique_channel("r"), free_port()
    arrivals: list[float] = []

    def answer(_message: bytes) -> str:
        arrivals.append(time.monotonic())
        return "AA"

    env = {"CONDUIT_BUS_URL": RABBIT_URL, "CONDUIT_STORE_URL": postgres_url,
           "CONDUIT_DASHBOARD_ENABLED": "false"}
    with MllpReceiver(answer=answer) as downstream:
        folder = tmp_path / "channels"
        write_channel(folder, {
            "name": name, "source": {"type": "mllp", "host": "127.0.0.1", "port": port},
            "destinations": [{"name": "out", "type": "mllp", "host": "127.0.0.1",
                              "port": downstream.port, "rate_limit": "600/min"}]})
        processes = [EngineProcess(folder, tmp_path / f"data-{role}{i}", env=env,
                                   args=["--role", role, "--workers", "4"])
                     for i, role in enumerate(("listeners", "workers", "workers"))]
        try:
            for process in processes:
                process.start()
            answers = mllp_exchange(port, [hl7(f"R{i}", f"P{i}") for i in range(150)])
            assert {msa(a)[1] for a in answers} == {"AA"}
            wait_until(lambda: len(arrivals) > 0 and time.monotonic() - arrivals[0] > 6.5, 30)
            first = arrivals[0]
            sent = sum(1 for at in arrivals if at - first <= 6.0)
            assert 58 <= sent <= 64, sent
        finally:
            for process in processes:
                process.stop()
            delete_channel_queues(name)
