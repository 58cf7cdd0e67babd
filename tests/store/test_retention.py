"""Retention on SQLite: rules per channel and status, unfinished work kept, the full-text index
kept in step, the file shrunk; ``conduit prune`` and ``conduit users`` from the command line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from conduit.cli import main
from conduit.store import Store
from conduit.store.fulltext import Indexer
from conduit.store.retention import RetentionError, RetentionSettings, prune_once
from conduit.store.tables import deliveries, events
from tests.store.retention_data import fill


def _statuses(store: Store) -> dict[str, dict[str, int]]:
    return store.counts()


def test_prune_by_age_channel_and_status_keeps_unfinished_and_shrinks_the_file(
        tmp_path: Path) -> None:
    path = tmp_path / "conduit.db"
    store = Store(f"sqlite:///{path}")
    store.migrate()
    fill(store, per_kind=150)
    Indexer(store.engine).run()
    assert len(store.search(text="oldname", limit=2000)) == 1200
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA auto_vacuum")).scalar() == 2
    settings = RetentionSettings.model_validate({"batch": 100, "rules": [
        {"older_than": "30d"},                                      # every channel but lab
        {"channel": "lab", "older_than": "30d", "statuses": ["SENT"]},
    ]})
    with store.engine.connect() as connection:
        connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    before = os.path.getsize(path)
    dry = prune_once(store.engine, settings, dry_run=True)
    assert dry.deleted == {"adt": 300, "lab": 150} and store.counts()["adt"]["SENT"] == 300
    result = prune_once(store.engine, settings)
    assert result.deleted == {"adt": 300, "lab": 150}
    assert result.vacuumed == "incremental_vacuum"
    counts = store.counts()
    # adt: old SENT and FILTERED gone; lab: only old SENT gone (its own rule); QUEUED and ERROR
    # stay everywhere, old or not
    assert counts["adt"] == {"SENT": 150, "FILTERED": 150, "QUEUED": 300, "ERROR": 300}
    assert counts["lab"] == {"SENT": 150, "FILTERED": 300, "QUEUED": 300, "ERROR": 300}
    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(deliveries)).scalar() == 1950
        assert connection.execute(select(func.count()).select_from(events)).scalar() == 1950
        connection.execute(text("INSERT INTO message_fts(message_fts) VALUES('integrity-check')"))
    # the index forgot exactly the pruned messages
    assert len(store.search(text="oldname", limit=2000)) == 1200 - 450
    assert len(store.search(text="newname sent", limit=1000)) == 300
    with store.engine.connect() as connection:
        connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        assert connection.execute(text("PRAGMA freelist_count")).scalar() == 0
    assert os.path.getsize(path) < before * 0.95, (before, os.path.getsize(path))

    # unfinished work goes only when a rule says so
    with pytest.raises(RetentionError, match="include_unfinished"):
        prune_once(store.engine, RetentionSettings.model_validate(
            {"rules": [{"older_than": "30d", "statuses": ["ERROR"]}]}))
    forced = prune_once(store.engine, RetentionSettings.model_validate({"rules": [
        {"channel": "adt", "older_than": "30d", "statuses": ["ERROR"],
         "include_unfinished": True}]}))
    assert forced.deleted == {"adt": 150}
    store.engine.dispose()


def test_conduit_prune_and_users_on_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    store = Store(url)
    store.migrate()
    fill(store, per_kind=5)
    runner = CliRunner()
    answer = runner.invoke(main, ["prune", "--store-url", url, "--older-than", "30d",
                                  "--channel", "lab", "--dry-run"])
    assert answer.exit_code == 0, answer.output
    assert "lab: would delete 10 message(s)" in answer.output
    refused = runner.invoke(main, ["prune", "--store-url", url, "--older-than", "30d",
                                   "--status", "QUEUED"])
    assert refused.exit_code == 2 and "include_unfinished" in refused.output
    answer = runner.invoke(main, ["prune", "--store-url", url, "--older-than", "30d"])
    assert answer.exit_code == 0 and "deleted 20 message(s)" in answer.output
    assert runner.invoke(main, ["prune", "--store-url", url]).exit_code == 2  # no rules

    added = runner.invoke(main, ["users", "add", "alice", "--role", "admin", "--password-stdin",
                                 "--store-url", url], input="a long password\n")
    assert added.exit_code == 0 and "added as admin" in added.output
    twice = runner.invoke(main, ["users", "add", "alice", "--password-stdin", "--store-url",
                                 url], input="a long password\n")
    assert twice.exit_code == 1 and "exists already" in twice.output
    short = runner.invoke(main, ["users", "add", "bob", "--password-stdin", "--store-url", url],
                          input="short\n")
    assert short.exit_code == 1 and "at least 8" in short.output
    token = runner.invoke(main, ["users", "token", "alice", "--store-url", url])
    assert token.exit_code == 0 and token.stdout.startswith("cdt_")  # the store: on stderr
    listed = runner.invoke(main, ["users", "list", "--store-url", url])
    assert "alice" in listed.output and "admin" in listed.output
    assert runner.invoke(main, ["users", "role", "alice", "viewer", "--store-url", url]
                         ).exit_code == 0
    assert runner.invoke(main, ["users", "remove", "alice", "--store-url", url]).exit_code == 0
    store.engine.dispose()
