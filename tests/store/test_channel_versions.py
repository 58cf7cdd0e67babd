"""Channel versions (``channel_versions``, migration 0009): numbered per channel, the same text
twice is one version, concurrent deploys never share a number; SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import inspect

from conduit.store.store import Store
from conduit.store.versions import ChannelVersions

ONE = "name: adt\nsource: {type: mllp, port: 2575}\n"
TWO = ONE + "description: second\n"


def test_versions_are_numbered_per_channel_and_kept_whole(store_url: str) -> None:
    store = Store(store_url)
    store.migrate()
    try:
        assert "channel_versions" in inspect(store.engine).get_table_names()
        kept = ChannelVersions(store.engine)
        assert kept.newest("adt") is None and kept.list("adt") == []
        first = kept.record("adt", ONE, None, "the file as found")
        assert (first.version, first.username, first.comment) == (1, None, "the file as found")
        assert kept.record("adt", ONE, "admin", "same text").version == 1  # nothing new
        second = kept.record("adt", TWO, "admin", "a description")
        assert second.version == 2
        assert kept.record("other", ONE, "admin").version == 1  # numbers run per channel
        back = kept.record("adt", ONE, "admin", "rolled back to version 1")
        assert back.version == 3  # a rollback is a new version with an old text

        listed = kept.list("adt")
        assert [v.version for v in listed] == [3, 2, 1]
        got = kept.get("adt", 2)
        assert got is not None and got.yaml == TWO and got.username == "admin"
        assert got.sha256 == hashlib.sha256(TWO.encode()).hexdigest()
        assert got.at.tzinfo is not None and got.comment == "a description"
        assert kept.get("adt", 9) is None
        newest = kept.newest("adt")
        assert newest is not None and newest.version == 3 and newest.yaml == ONE
    finally:
        store.engine.dispose()


def test_concurrent_deploys_take_distinct_numbers(store_url: str) -> None:
    store = Store(store_url)
    store.migrate()
    try:
        kept = ChannelVersions(store.engine)
        texts = [f"{ONE}description: edit {i}\n" for i in range(8)]
        with ThreadPoolExecutor(4) as pool:
            made = list(pool.map(lambda t: kept.record("adt", t, "admin"), texts))
        assert sorted(v.version for v in made) == list(range(1, 9))
        assert sorted(v.yaml for v in kept.list("adt")) == sorted(texts)
    finally:
        store.engine.dispose()
