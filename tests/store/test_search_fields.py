"""Search fields written with each message, opt-in full text, and an index that shrinks when
pruned (issue 16)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, text, update

from conduit.store import Store
from conduit.store.codec import pack
from conduit.store.fulltext import Indexer
from conduit.store.retention import RetentionRule, RetentionSettings, prune_once
from conduit.store.store import Route
from conduit.store.tables import messages


def _message(n: int, word: str = "plain") -> bytes:
    return (f"MSH|^~\\&|A|B|C|D|20260101||ORU^R01|C{n}|P|2.5\r"
            f"PID|1||P{n}^^^H^MR||DOE^JOHN\rOBR|1|ORD{n}|ACC{n}\rOBX|1|TX|N||{word}\r").encode()


async def _accept(store: Store, channel: str, n: int, word: str = "plain",
                  search: list[tuple[str, str]] | None = None) -> int:
    return await store.accepted(channel, _message(n, word), control_id=f"C{n}",
                                message_type="ORU^R01", status="TRANSFORMED", transformed=None,
                                error=None, routes=[Route("out", b"x")],
                                search=search if search is not None else
                                [("OBR-3.1", f"ACC{n}"), ("MRN", f"P{n}")])


def test_search_fields_are_written_with_the_message_and_found(store_url: str) -> None:
    store = Store(store_url)
    store.migrate()

    async def scenario() -> list[int]:
        first = await _accept(store, "lab", 1, search=[("OBR-3.1", "ACC1"), ("MRN", "P1"),
                                                        ("MRN", "P1"), ("PV1-19", "V9")])
        second = await _accept(store, "lab", 2)
        third = await store.received("adt", b"MSH|^~\\&|A\r", control_id="C3",
                                     message_type="ADT^A01", search=[("PID-5.1", "DOE")])
        await store.close()
        return [first, second, third]

    first, second, third = asyncio.run(scenario())
    found = lambda **kw: [r.id for r in store.search(**kw)]  # noqa: E731
    assert found(fields=[("OBR-3", "ACC1")]) == [first]  # OBR-3 finds OBR-3.1
    assert found(fields=[("OBR-3.1", "ACC2")]) == [second]
    assert found(fields=[("MRN", "P1"), ("PV1-19", "V9")]) == [first]
    assert found(fields=[("MRN", "P1"), ("OBR-3.1", "ACC2")]) == []
    assert found(fields=[("PID-5.1", "DOE")]) == [third]
    assert found(fields=[("PID-5.1", "DOE")], channel="lab") == []
    assert found(fields=[("OBR-3.1", "ACC")]) == []  # exact values only
    store.engine.dispose()


def test_a_value_many_messages_share_is_paged_newest_first(store_url: str) -> None:
    store = Store(store_url)
    store.migrate()

    async def scenario() -> list[int]:
        ids = [await _accept(store, "lab" if n % 3 else "adt", n,
                             search=[("PID-3.4", "HOSP"), ("MRN", f"P{n % 7}")])
               for n in range(120)]
        await store.close()
        return ids

    ids = asyncio.run(scenario())
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))
    pages, before = [], None
    while True:
        page = [r.id for r in store.search(fields=[("PID-3.4", "HOSP")], before_id=before,
                                           limit=50)]
        pages.append(page)
        if len(page) < 50:
            break
        before = page[-1]
    assert [len(p) for p in pages] == [50, 50, 20]
    assert [i for page in pages for i in page] == ids[::-1]
    lab = [i for n, i in enumerate(ids) if n % 3][::-1]
    assert [r.id for r in store.search(fields=[("PID-3.4", "HOSP")], channel="lab",
                                       limit=200)] == lab
    assert [r.id for r in store.search(fields=[("PID-3.4", "HOSP"), ("MRN", "P3")],
                                       limit=200)] == [i for n, i in enumerate(ids)
                                                       if n % 7 == 3][::-1]
    # SQLite walks the (name, value, message_id) index from the newest, not an IN list
    joined = "FROM search_fields JOIN messages" in statements[0]
    assert joined == store_url.startswith("sqlite")
    store.engine.dispose()


def test_only_channels_that_opted_in_are_indexed(store_url: str) -> None:
    store = Store(store_url)
    store.migrate()

    async def scenario() -> None:
        for n in range(5):
            await _accept(store, "lab", n, word="zebra")
            await _accept(store, "adt", 100 + n, word="zebra")
        await store.close()

    asyncio.run(scenario())
    indexer = Indexer(store.engine, batch=3)
    assert indexer.run(channels={"lab"}) == 10  # walked every message, a batch at a time
    assert sorted(r.channel for r in store.search(text="zebra")) == ["lab"] * 5
    assert store.fulltext_lag() == (0, 0.0)
    store.engine.dispose()


def test_a_pass_costs_per_batch_not_per_store_size(store_url: str) -> None:
    """Every statement of a pass reads messages by key from where it stopped, with a LIMIT:
    no scan of messages and no anti-join over message_text (issue 16: 634 M rows read in 10
    minutes)."""
    store = Store(store_url)
    store.migrate()

    async def scenario() -> None:
        for n in range(6):
            await _accept(store, "lab", n, word="zebra")
        await store.close()

    asyncio.run(scenario())
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()).lower())

    event.listen(store.engine, "before_cursor_execute", seen)
    Indexer(store.engine, batch=4).run(channels={"lab"})
    reads = [s for s in statements if s.startswith("select") and "from messages" in s]
    assert reads, statements
    for statement in reads:
        assert "not exists" not in statement and "message_text" not in statement, statement
        assert ("messages.id >" in statement and "limit" in statement) \
            or "max(messages.id)" in statement or "messages.id in" in statement, statement
    store.engine.dispose()


def test_lag_counts_messages_not_yet_indexed_and_seconds_behind(store_url: str) -> None:
    store = Store(store_url)
    store.migrate()

    async def scenario() -> None:
        for n in range(3):
            await _accept(store, "lab", n)
        await store.close()

    asyncio.run(scenario())
    with store.engine.begin() as connection:  # the oldest waits for a minute
        connection.execute(update(messages).where(messages.c.id == 1).values(
            received_at=datetime.now(UTC) - timedelta(minutes=1)))
    behind, seconds = store.fulltext_lag()
    assert behind == 3 and 59 < seconds < 120
    Indexer(store.engine).run(channels=set())  # no channel opted in: nothing to read
    assert store.fulltext_lag() == (0, 0.0)
    store.engine.dispose()


def test_postgres_ids_committed_out_of_order_are_indexed(postgres_url: str) -> None:
    """Two engine processes commit ids out of order: the walk passes a hole that fills later."""
    store = Store(postgres_url)
    store.migrate()
    now = datetime.now(UTC)

    def insert(message_id: int) -> None:
        with store.engine.begin() as connection:
            connection.execute(messages.insert().values(
                id=message_id, channel="lab", received_at=now, updated_at=now, status="SENT",
                raw=pack(_message(message_id, f"word{message_id}"))))

    for message_id in (1, 2, 4):
        insert(message_id)
    indexer = Indexer(store.engine)
    assert indexer.run(channels={"lab"}) == 3
    insert(3)  # committed after 4 was indexed
    indexer.run(channels={"lab"})
    assert [r.id for r in store.search(text="word3")] == [3]
    store.engine.dispose()


def test_pruning_shrinks_the_fts5_index(sqlite_url: str) -> None:
    """A contentless FTS5 table records each delete as one more entry until it is optimized:
    pruning half of a store left the index at full size (issue 16)."""
    store = Store(sqlite_url)
    store.migrate()
    old = datetime.now(UTC) - timedelta(days=40)
    rows = [{"channel": "lab", "received_at": old if n % 2 else datetime.now(UTC),
             "updated_at": old, "status": "SENT",
             "raw": pack(_message(n, " ".join(f"w{n}x{k}" for k in range(40))))}
            for n in range(3000)]
    with store.engine.begin() as connection:
        connection.execute(messages.insert(), rows)
    Indexer(store.engine, batch=5000).run()

    def index_bytes() -> int:
        with store.engine.connect() as connection:
            return int(connection.execute(text(
                "SELECT sum(length(block)) FROM message_fts_data")).scalar() or 0)

    before = index_bytes()
    settings = RetentionSettings(rules=[RetentionRule(older_than=86400 * 30)])
    assert prune_once(store.engine, settings).total == 1500
    assert index_bytes() < before * 0.7
    assert [r.id for r in store.search(text="w2x7")] == [3]  # what is left is still found
    store.engine.dispose()


def test_a_listeners_only_store_keeps_no_raw_content(sqlite_url: str) -> None:
    """A message stored RECEIVED is processed (and settled) elsewhere: its raw content is not
    kept at hand here, where nothing would ever drop it (issue 16, item 5)."""
    store = Store(sqlite_url)
    store.migrate()

    async def scenario() -> None:
        for n in range(50):
            await store.received("lab", _message(n), control_id=f"C{n}", message_type="ORU")
        assert store._recent == {} and store._recent_bytes == 0
        # the process that runs the pipeline keeps it while its deliveries are under way
        await store.processed(1, "TRANSFORMED", transformed=None, error=None,
                              routes=[Route("out", b"x")], raw=_message(0))
        assert list(store._recent) == [1]
        await store.delivered(1, "out", "SENT", attempts=1, response=b"ACK", error=None)
        assert store._recent == {}
        await store.close()

    asyncio.run(scenario())


def test_pruned_messages_take_their_search_fields(store_url: str) -> None:
    store = Store(store_url)
    store.migrate()

    async def scenario() -> None:
        for n in range(40):
            await _accept(store, "lab", n)
        await store.close()

    asyncio.run(scenario())
    with store.engine.begin() as connection:  # the first half is old
        connection.execute(update(messages).where(messages.c.id <= 20).values(
            received_at=datetime.now(UTC) - timedelta(days=40), status="SENT"))
    settings = RetentionSettings(rules=[RetentionRule(older_than=86400 * 30)])
    assert prune_once(store.engine, settings).total == 20
    with store.engine.connect() as connection:
        left = connection.execute(text("SELECT min(message_id), count(*) FROM search_fields"))
        assert tuple(left.one()) == (21, 40)
    assert [r.control_id for r in store.search(fields=[("OBR-3", "ACC25")])] == ["C25"]
    assert store.search(fields=[("OBR-3", "ACC5")]) == []
    store.engine.dispose()
