"""``conduit reprocess`` while the engine runs: dead letters and chosen messages reach the
running workers (RabbitMQ: published by the command; embedded: through the store)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conduit.bus import dead_letter_queue
from tests.rabbit import RABBIT_URL, delete_channel_queues, engine_on, get_all, hl7, unique_channel
from tests.support import MllpReceiver, control_id, free_port, mllp_exchange, wait_for


@pytest.fixture(params=["embedded+sqlite", "rabbitmq+postgres"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    channel = unique_channel("r")
    if request.param == "embedded+sqlite":
        yield {"bus_url": None, "store_url": f"sqlite:///{tmp_path / 'data' / 'conduit.db'}",
               "channel": channel}
        return
    try:
        yield {"bus_url": RABBIT_URL, "store_url": request.getfixturevalue("postgres_url"),
               "channel": channel}
    finally:
        delete_channel_queues(channel)


def conduit(*args: str, stack: dict[str, Any]) -> str:
    env = {**os.environ, "CONDUIT_STORE_URL": stack["store_url"]}
    if stack["bus_url"]:
        env["CONDUIT_BUS_URL"] = stack["bus_url"]
    done = subprocess.run([sys.executable, "-m", "conduit", *args], env=env, text=True,
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_reprocess_dead_letters_and_by_id_reach_the_running_engine(
        stack: dict[str, Any], tmp_path: Path) -> None:
    name = stack["channel"]
    healed = False
    answer = lambda m: "AA" if healed or control_id(m) != "BAD" else "AE"  # noqa: E731

    async def scenario() -> None:
        nonlocal healed
        with MllpReceiver(answer=answer) as downstream:
            port = free_port()
            channel = {"name": name, "source": {"type": "mllp", "host": "127.0.0.1", "port": port},
                       "destinations": [
                           {"name": "out", "type": "mllp", "host": "127.0.0.1",
                            "port": downstream.port,
                            "retry": {"attempts": 2, "initial": "10ms"}},
                           {"name": "copy", "type": "mllp", "host": "127.0.0.1",
                            "port": downstream.port}]}
            async with engine_on([channel], tmp_path, bus_url=stack["bus_url"],
                                 store_url=stack["store_url"]) as engine:
                await asyncio.to_thread(mllp_exchange, port, [hl7("A"), hl7("BAD"), hl7("C")])
                await wait_for(lambda: engine.store.counts(name)[name] == {"SENT": 2, "ERROR": 1},
                               15)
                bad = engine.store.search(channel=name, status="ERROR")[0].id
                healed = True
                out = await asyncio.to_thread(conduit, "reprocess", "--channel", name,
                                              "--dead-letters", stack=stack)
                assert "reprocessing 1 message(s), 1 delivery(ies)" in out
                await wait_for(lambda: engine.store.counts(name)[name] == {"SENT": 3}, 15)
                record = engine.store.get(bad)
                assert record is not None
                assert {d.destination: d.status for d in record.deliveries} == {
                    "out": "SENT", "copy": "SENT"}
                assert [kind for _, kind, _ in record.events] == ["reprocess"]
                if stack["bus_url"]:
                    assert get_all(dead_letter_queue(name)) == []

                first = engine.store.search(channel=name, control_id="A")[0].id
                before = len(downstream.messages)
                await asyncio.to_thread(conduit, "reprocess", str(first), "--destination",
                                        "copy", stack=stack)
                await wait_for(lambda: len(downstream.messages) == before + 1, 15)
                assert downstream.control_ids()[-1] == "A"
                await wait_for(lambda: engine.store.counts(name)[name] == {"SENT": 3}, 15)

    asyncio.run(scenario())
