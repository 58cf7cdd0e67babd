"""Retention on the real PostgreSQL: batched deletes, the tsvector rows going with their
messages, VACUUM afterwards."""

from __future__ import annotations

from sqlalchemy import func, select, text

from conduit.store import Store
from conduit.store.fulltext import Indexer
from conduit.store.retention import RetentionSettings, prune_once
from tests.store.retention_data import fill


def test_prune_on_postgres(postgres_url: str) -> None:
    store = Store(postgres_url)
    store.migrate()
    fill(store, per_kind=20)
    assert Indexer(store.engine).run() == 320
    assert len(store.search(text="oldname filtered", limit=100)) == 40
    result = prune_once(store.engine, RetentionSettings.model_validate(
        {"batch": 7, "rules": [{"older_than": "30d"}]}))
    assert result.deleted == {"adt": 40, "lab": 40} and result.vacuumed == "vacuum"
    assert store.counts()["adt"] == {"SENT": 20, "FILTERED": 20, "QUEUED": 40, "ERROR": 40}
    with store.engine.connect() as connection:
        remaining = connection.execute(select(func.count()).select_from(
            text("message_text"))).scalar()
    assert remaining == 320 - 80
    assert store.search(text="oldname filtered", limit=100) == []
    assert len(store.search(text="oldname error", limit=100)) == 40
    store.engine.dispose()
