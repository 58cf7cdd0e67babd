"""The engine records what happens to it in the event log (issue 19): deploys, state changes,
breakers and an ordered destination blocking, with the user who asked."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from conduit.store import eventlog
from tests.support import (
    MllpReceiver,
    free_port,
    mllp_exchange,
    running_engine,
    source_port,
    wait_for,
)

ADT = (b"MSH|^~\\&|REG|HOSP|ADT|HOSP|20260101120000||ADT^A01|{id}|P|2.5\r"
       b"PID|1||PAT123^^^HOSP^MR||TESTPATIENT^ALPHA||19800101|F\r")


def adt(control_id: str) -> bytes:
    return ADT.replace(b"{id}", control_id.encode())


def events(engine: Any, **filters: Any) -> list[eventlog.Event]:
    """Oldest first."""
    return list(reversed(eventlog.listed(engine.store.engine, limit=500, **filters)))


@pytest.mark.timeout(60)
def test_deploy_state_changes_breaker_and_undeploy_are_recorded(tmp_path: Path,
                                                                 store_url: str) -> None:
    down = free_port()  # nothing listens: every send fails
    channel = {"name": "adt", "source": {"type": "mllp", "host": "127.0.0.1", "port": 0},
               "destinations": [{"name": "lab", "type": "mllp", "host": "127.0.0.1",
                                 "port": down, "connect_timeout": "1s",
                                 "breaker": {"failures": 2, "reset": "60s"},
                                 "retry": {"attempts": 50, "initial": "10ms", "max": "10ms"}}]}

    async def scenario() -> None:
        async with running_engine([channel], tmp_path, store_url=store_url) as engine:
            control = engine.control
            await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"), [adt("E1")])
            await wait_for(lambda: engine.runtimes["adt"].breaker_state("lab") == "open")
            await control.pause("adt", user="olivia")
            await control.resume("adt", user="olivia")
            await control.stop("adt", user="olivia")
            await control.start("adt")
            with MllpReceiver(port=down):  # the receiver is back; an operator resets
                assert engine.runtimes["adt"].close_breaker("lab", user="olivia")
                await wait_for(lambda: engine.store.counts()["adt"].get("SENT") == 1)
            await control.redeploy("adt", user="adam")
            await control.undeploy("adt", user="adam")
            await engine.events.settled()

            seen = events(engine, channel="adt")
            assert [e.kind for e in seen] == [
                "channel.deployed", "breaker.opened", "channel.paused", "channel.resumed",
                "channel.stopped", "channel.started", "breaker.reset", "channel.redeployed",
                "channel.undeployed"]
            by_kind = {e.kind: e for e in seen}
            path = str(tmp_path / "channels" / "adt.yaml")
            assert by_kind["channel.deployed"].text == f"deployed from {path}"
            assert by_kind["channel.deployed"].user is None  # the engine's start
            assert by_kind["channel.redeployed"].text == f"redeployed from {path}"
            assert by_kind["channel.redeployed"].user == "adam"
            assert by_kind["channel.undeployed"].user == "adam"
            opened = by_kind["breaker.opened"]
            assert opened.level == "warning" and opened.user is None
            assert opened.text.startswith("breaker of lab opened after 2 failures")
            assert by_kind["breaker.reset"].text == "breaker of lab reset by hand (was open)"
            assert [(e.user, e.text) for e in seen[2:6]] == [
                ("olivia", "paused: source closed, queues draining"),
                ("olivia", "resumed (was paused)"),
                ("olivia", "stopped: source closed, workers held"),
                (None, "started (was stopped)")]
            assert "PAT123" not in repr(seen) and "TESTPATIENT" not in repr(seen)
            assert [e.kind for e in events(engine, kind="engine")] == ["engine.started"]
        # stopping the engine is recorded before its store closes
        from conduit.store import Store

        store = Store(engine.store.url)
        assert eventlog.listed(store.engine, limit=1)[0].kind == "engine.stopped"
        store.engine.dispose()

    asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_an_ordered_destination_blocking_and_flowing_again_is_recorded(tmp_path: Path) -> None:
    answers = ["AE"]
    receiver = MllpReceiver(answer=lambda m: answers[-1])
    channel = {"name": "feed", "source": {"type": "mllp", "host": "127.0.0.1", "port": 0},
               "destinations": [{"name": "ehr", "type": "mllp", "host": "127.0.0.1",
                                 "port": receiver.port, "ordered": True, "ack_timeout": "1s",
                                 "retry": {"attempts": 2, "initial": "10ms", "max": "100ms"}}]}

    async def scenario() -> None:
        async with running_engine([channel], tmp_path) as engine:
            await asyncio.to_thread(mllp_exchange, source_port(engine, "feed"), [adt("B1")])
            runtime = engine.runtimes["feed"]
            await wait_for(lambda: "ehr" in runtime.blocked_destinations())
            answers.append("AA")
            await wait_for(lambda: engine.store.counts()["feed"].get("SENT") == 1)
            await engine.events.settled()
            held = engine.store.search(control_id="B1")[0].id
            seen = events(engine, kind="destination")
            assert [(e.kind, e.level) for e in seen] == [("destination.blocked", "error"),
                                                         ("destination.unblocked", "info")]
            assert seen[0].text.startswith(
                f"ordered destination ehr blocked on message {held} after 2 attempts: ")
            assert seen[1].text == f"ordered destination ehr flowing again: message {held} sent"

    with receiver:
        asyncio.run(scenario())


def test_an_event_that_cannot_be_written_never_fails_what_it_records(tmp_path: Path) -> None:
    from conduit.engine.events import EventLog
    from conduit.store import Store

    store = Store(f"sqlite:///{tmp_path / 'no-schema.db'}")  # never migrated: no event_log

    async def scenario() -> None:
        log = EventLog(store)
        log.record("channel.paused", "paused", channel="adt", user="olivia")
        await log.settled()  # the write failed, was logged, and nothing was raised

    asyncio.run(scenario())
    EventLog(store).record("engine.started", "off the loop: written at once, failing quietly")
    store.migrate()
    EventLog(store).record("engine.started", "now it is written")
    assert [e.text for e in eventlog.listed(store.engine)] == ["now it is written"]
    store.engine.dispose()
