"""``conduit events`` lists the event log (issue 19) from the store, filtered, as text or
JSON; ``conduit reprocess`` records itself there."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from conduit.cli import main
from conduit.store import Store, eventlog


def test_events_are_listed_newest_first_with_filters(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'conduit.db'}"
    store = Store(url)
    store.migrate()
    old = datetime.now(UTC) - timedelta(days=2)
    eventlog.record(store.engine, "channel.deployed", "deployed from adt.yaml", channel="adt",
                    at=old)
    eventlog.record(store.engine, "login.failed", "unknown user or wrong password",
                    user="mallory", level="warning")
    eventlog.record(store.engine, "channel.paused", "paused", channel="adt", user="olivia")
    store.engine.dispose()
    runner = CliRunner()

    def lines(*args: str) -> list[str]:
        result = runner.invoke(main, ["events", "--store-url", url, *args])
        assert result.exit_code == 0, result.output
        return [line for line in result.output.splitlines()
                if line.strip() and not line.startswith("conduit: store ")]

    every = lines()
    assert [line.split()[4] for line in every] == [
        "channel.paused", "login.failed", "channel.deployed"]
    assert every[0].endswith("adt               olivia        paused")
    assert [line.split()[4] for line in lines("--kind", "channel", "--since", "1d")] == [
        "channel.paused"]
    assert len(lines("--level", "warning", "--user", "mallory")) == 1
    as_json = [json.loads(line) for line in lines("--json", "--limit", "1")]
    assert as_json[0]["kind"] == "channel.paused" and as_json[0]["user"] == "olivia"
    bad = runner.invoke(main, ["events", "--store-url", url, "--since", "soon"])
    assert bad.exit_code == 2


def test_conduit_reprocess_is_recorded(tmp_path: Path) -> None:
    import asyncio

    from conduit.store.store import Route

    url = f"sqlite:///{tmp_path / 'conduit.db'}"
    store = Store(url)
    store.migrate()

    async def write() -> int:
        message_id = await store.accepted(
            "adt", b"MSH|^~\\&|A\r", control_id="C1", message_type="ADT^A01",
            status="TRANSFORMED", transformed=None, error=None, routes=[Route("lab", b"x")])
        await store.delivered(message_id, "lab", "ERROR", attempts=3, response=None,
                              error="refused")
        await store.close()
        return message_id

    message_id = asyncio.run(write())
    result = CliRunner().invoke(main, ["reprocess", str(message_id), "--store-url", url])
    assert result.exit_code == 0, result.output
    store = Store(url)
    found = eventlog.listed(store.engine, kind="messages")
    assert [(e.kind, e.user) for e in found] == [("messages.reprocessed", None)]
    assert found[0].text.startswith("reprocessed 1 message with conduit reprocess, on the host")
    store.engine.dispose()
