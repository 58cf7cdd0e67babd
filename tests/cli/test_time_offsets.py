"""Times with an offset mean the same instant on every store (SQLite keeps UTC text), and
`conduit prune --dry-run` says what it would delete without logging that it deleted."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from structlog.testing import capture_logs

from conduit.ops.operations import when
from conduit.store import Store
from conduit.store.retention import RetentionRule, RetentionSettings, prune_once


def _one_message(url: str) -> Store:
    store = Store(url)
    store.migrate()

    async def write() -> None:
        await store.received("adt", b"MSH|^~\\&|A\r", control_id="C1", message_type="ADT^A01")
        await store.close()

    asyncio.run(write())
    return Store(url)


def test_since_and_until_with_offsets_find_the_message(store_url: str) -> None:
    store = _one_message(store_url)
    now = datetime.now(UTC)
    east = timezone(timedelta(hours=2))
    west = timezone(timedelta(hours=-5))
    since = (now - timedelta(minutes=5)).astimezone(east)
    until = (now + timedelta(minutes=5)).astimezone(west)
    assert [r.control_id for r in store.search(since=since)] == ["C1"]
    assert [r.control_id for r in store.search(until=until)] == ["C1"]
    assert [r.control_id for r in store.search(since=since, until=until)] == ["C1"]
    # the same instants, past the message: nothing
    assert store.search(since=(now + timedelta(minutes=5)).astimezone(west)) == []
    assert store.search(until=(now - timedelta(minutes=5)).astimezone(east)) == []
    store.engine.dispose()


def test_when_reads_offsets_as_instants() -> None:
    parsed = when("2026-12-04T21:58:00+02:00")
    assert parsed == datetime(2026, 12, 4, 19, 58, tzinfo=UTC)
    assert parsed is not None and parsed.utcoffset() == timedelta(0)


def test_cli_since_with_offset_finds_the_message(tmp_path: Path) -> None:
    _one_message(f"sqlite:///{tmp_path / 'data' / 'conduit.db'}").engine.dispose()
    since = (datetime.now(UTC) - timedelta(minutes=5)).astimezone(timezone(timedelta(hours=2)))
    result = subprocess.run(
        [sys.executable, "-m", "conduit", "messages", "--since", since.isoformat()],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "CONDUIT_DATA_DIR": str(tmp_path / "data")}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 message(s)" in result.stdout and "C1" in result.stdout


def test_prune_dry_run_logs_no_deletion(tmp_path: Path) -> None:
    store = _one_message(f"sqlite:///{tmp_path / 'conduit.db'}")
    with store.engine.begin() as connection:
        from conduit.store.tables import messages

        connection.execute(messages.update().values(status="SENT"))
    rules = RetentionSettings(rules=[RetentionRule.model_validate({"older_than": "1s"})])
    with capture_logs() as logs:
        result = prune_once(store.engine, rules, dry_run=True,
                            now=datetime.now(UTC) + timedelta(hours=1))
    assert result.total == 1
    assert not [e for e in logs if "pruned" in e["event"]], logs
    assert store.get(1) is not None
    store.engine.dispose()
