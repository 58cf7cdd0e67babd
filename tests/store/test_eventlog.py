"""The event log's rows (issue 19) against SQLite and the real local PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, inspect, select

from conduit.store import Store, eventlog
from conduit.store.tables import event_log


def test_events_are_written_filtered_and_paged_newest_first(store_url: str) -> None:
    store = Store(store_url)
    store.migrate()
    assert "event_log" in inspect(store.engine).get_table_names()
    engine = store.engine
    start = datetime.now(UTC) - timedelta(hours=2)
    eventlog.record(engine, "channel.deployed", "deployed from channels/adt.yaml",
                    channel="adt", user="admin", at=start)
    eventlog.record(engine, "channel.paused", "paused", channel="adt", user="operator",
                    at=start + timedelta(hours=1))
    eventlog.record(engine, "breaker.opened", "breaker of lab-out opened after 3 failures",
                    channel="lab", level="warning", at=start + timedelta(hours=1, minutes=1))
    eventlog.record(engine, "login.failed", "unknown user or wrong password", user="mallory",
                    level="warning")
    eventlog.record(engine, "login.succeeded", "password", user="operator")

    every = eventlog.listed(engine)
    assert [e.kind for e in every] == ["login.succeeded", "login.failed", "breaker.opened",
                                       "channel.paused", "channel.deployed"]
    first = every[-1]
    assert first.at == start.replace(microsecond=start.microsecond) and first.at.tzinfo
    assert (first.channel, first.user, first.level) == ("adt", "admin", "info")
    assert first.jsonable()["at"] == start.isoformat()

    # a family of kinds, a channel, a level, a user, a time range
    assert [e.kind for e in eventlog.listed(engine, kind="channel")] == [
        "channel.paused", "channel.deployed"]
    assert [e.kind for e in eventlog.listed(engine, kind="login.failed")] == ["login.failed"]
    assert eventlog.listed(engine, kind="chan") == []  # a family is a whole word
    assert [e.kind for e in eventlog.listed(engine, channel="lab")] == ["breaker.opened"]
    assert [e.kind for e in eventlog.listed(engine, level="warning")] == [
        "login.failed", "breaker.opened"]
    assert [e.kind for e in eventlog.listed(engine, user="operator")] == [
        "login.succeeded", "channel.paused"]
    window = eventlog.listed(engine, since=start + timedelta(minutes=30),
                             until=start + timedelta(hours=1, minutes=30))
    assert [e.kind for e in window] == ["breaker.opened", "channel.paused"]

    # paging: two at a time, each page older than the last
    page = eventlog.listed(engine, limit=2)
    older = eventlog.listed(engine, limit=2, before_id=page[-1].id)
    assert [e.kind for e in older] == ["breaker.opened", "channel.paused"]
    assert eventlog.kinds(engine) == sorted({e.kind for e in every})
    engine.dispose()


def test_only_the_newest_events_are_kept(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(store_url)
    store.migrate()
    monkeypatch.setattr(eventlog, "TRIM_EVERY", 10)
    for i in range(25):
        eventlog.record(store.engine, "user.added", f"user u{i} added", keep=5)
    with store.engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(event_log)).scalar()
    # trimmed at the 10th and 20th: rows 16-25 are left
    assert count == 10
    assert eventlog.listed(store.engine, limit=1)[0].text == "user u24 added"
    assert eventlog.listed(store.engine)[-1].text == "user u15 added"
    store.engine.dispose()


def test_long_texts_are_clipped_and_levels_checked(store_url: str) -> None:
    store = Store(store_url)
    store.migrate()
    eventlog.record(store.engine, "alert.fired", "x" * 2000, channel="c" * 300)
    event = eventlog.listed(store.engine)[0]
    assert len(event.text) == eventlog.TEXT_MAX and event.channel == "c" * 100
    with pytest.raises(ValueError, match="level"):
        eventlog.record(store.engine, "alert.fired", "text", level="debug")
    store.engine.dispose()
