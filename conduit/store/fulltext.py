"""Full-text search over stored messages: SQLite FTS5 or PostgreSQL tsvector.

Raw content is stored compressed, so no trigger can index it: the :class:`Indexer` runs beside
the engine and indexes new messages in batches (a second or so behind the hot path, which it never
slows). The indexed document is a pure function of the raw bytes, the first 100,000 of them:
SQLite gets the decoded text and its FTS5 tokenizer (unicode61) splits it into words of letters
and digits itself (:func:`text_of`); PostgreSQL gets those words joined by spaces
(:func:`document`), so that its parser does not read ``2.5.1`` or ``/min`` as one token. That
lets pruning remove a message from SQLite's contentless FTS5 table, which needs the original
text to delete. A search is every word in any order (the FTS5 table keeps no positions).

The dashboard runs the indexer in a process of its own (:func:`index_pending`): in a thread of the
engine it competed with the event loop for the GIL and on SQLite held the write lock for a whole
2,000-message batch (bench, engine saturated: ACK p99 36-57 ms in a thread, 28-30 ms in its own
process; 12-23 ms with no indexing at all). In its process it takes ``PROCESS_BATCH`` messages a
transaction (a few ms of the lock) and pauses between them, so the engine's group commits, which
try again on the loop when they find the lock taken (``batch.LOCKED_TRIES``), get it in between.

Progress is kept in ``store_state`` (``fulltext.last_id``). On PostgreSQL several engine processes
may commit ids out of order, so each pass also looks back over a window of recent ids for any it
skipped (``ON CONFLICT DO NOTHING`` keeps that idempotent).
"""

from __future__ import annotations

import re
import time
from typing import Any

from sqlalchemy import Connection, Engine, Integer, bindparam, column, select, text
from sqlalchemy.sql.elements import ColumnElement

from conduit.store.codec import unpack
from conduit.store.connect import INDEXER_NAME, make_engine
from conduit.store.tables import messages, store_state

MAX_CHARS = 100_000
LOOK_BACK = 10_000
STATE_KEY = "fulltext.last_id"
PROBE = 2000
#: In the indexing process: messages a transaction, and the pause between transactions.
PROCESS_BATCH = 50
PROCESS_PAUSE = 0.005
_WORD = re.compile(r"\w+")
_TERM = re.compile(r"[^\W_]+")  # what unicode61 keeps as a token: letters and digits


def document(raw: bytes | None) -> str:
    """The text PostgreSQL indexes for a message: its words joined by spaces."""
    if not raw:
        return ""
    return " ".join(_WORD.findall(text_of(raw)))


def text_of(raw: bytes | None) -> str:
    """The text SQLite indexes for a message (deterministic: pruning re-derives it to delete;
    FTS5 finds the same words in it as in :func:`document`)."""
    return raw[:MAX_CHARS].decode("utf-8", errors="replace") if raw else ""


def terms(query: str) -> list[str]:
    """The words of a search box entry; every one must occur (AND). Split as FTS5 splits
    (``ADT_A01`` is two words): a quoted term with a separator inside would be a phrase."""
    return [t.lower() for t in _TERM.findall(query)][:20]


def condition(query: str, engine: Engine) -> ColumnElement[bool] | None:
    """A WHERE clause on ``messages`` for the words in ``query``; None when it has none.

    PostgreSQL misjudges how many rows a rare word matches and would walk the whole index
    newest-first looking for them (0.5 s over a million messages), so a cheap probe fetches up to
    ``PROBE`` matching ids first: fewer than that, and the search is by those ids (a few ms);
    more, and the newest-first walk finds a page quickly.
    """
    words = terms(query)
    if not words:
        return None
    if engine.dialect.name == "sqlite":
        match = " ".join(f'"{w}"' for w in words)
        subquery = text("SELECT rowid FROM message_fts WHERE message_fts MATCH :fts") \
            .bindparams(bindparam("fts", match)).columns(column("rowid", Integer))
        return messages.c.id.in_(subquery)
    document = " ".join(words)
    with engine.connect() as connection:
        ids = connection.execute(text(
            "SELECT message_id FROM message_text "
            "WHERE document @@ plainto_tsquery('simple', :fts) LIMIT :n"),
            {"fts": document, "n": PROBE}).scalars().all()
    if len(ids) < PROBE:
        return messages.c.id.in_(list(ids)) if ids else messages.c.id.in_([-1])
    subquery = text("SELECT message_id FROM message_text "
                    "WHERE document @@ plainto_tsquery('simple', :fts)") \
        .bindparams(bindparam("fts", document)).columns(column("message_id", Integer))
    return messages.c.id.in_(subquery)


def _last_id(connection: Connection) -> int:
    value = connection.execute(select(store_state.c.value)
                               .where(store_state.c.key == STATE_KEY)).scalar()
    return int(value) if value else 0


def _set_last_id(connection: Connection, value: int) -> None:
    updated = connection.execute(store_state.update().where(store_state.c.key == STATE_KEY)
                                 .values(value=str(value)))
    if not updated.rowcount:
        connection.execute(store_state.insert().values(key=STATE_KEY, value=str(value)))


class Indexer:
    """Indexes messages not yet in the full-text index, ``batch`` at a time."""

    def __init__(self, engine: Engine, batch: int = 2000) -> None:
        self.engine = engine
        self.batch = batch
        self.sqlite = engine.dialect.name == "sqlite"

    def run_once(self) -> int:
        """Index one batch; returns how many messages it indexed (0: up to date)."""
        with self.engine.begin() as connection:
            last = _last_id(connection)
            if self.sqlite:
                rows = connection.execute(
                    select(messages.c.id, messages.c.raw).where(messages.c.id > last)
                    .order_by(messages.c.id).limit(self.batch)).all()
                if rows:
                    connection.execute(
                        text("INSERT INTO message_fts(rowid, body) VALUES (:id, :body)"),
                        [{"id": i, "body": text_of(unpack(r))} for i, r in rows])
            else:
                rows = connection.execute(text(
                    "SELECT m.id, m.raw FROM messages m WHERE m.id > :low AND NOT EXISTS "
                    "(SELECT 1 FROM message_text t WHERE t.message_id = m.id) "
                    "ORDER BY m.id LIMIT :n"), {"low": max(0, last - LOOK_BACK),
                                                 "n": self.batch}).all()
                if rows:  # one statement for the batch: a plan per row cost as much again
                    connection.execute(text(
                        "INSERT INTO message_text (message_id, document) "
                        "SELECT id, strip(to_tsvector('simple', body)) "
                        "FROM unnest(CAST(:ids AS bigint[]), CAST(:bodies AS text[])) "
                        "AS batch(id, body) ON CONFLICT DO NOTHING"),
                        {"ids": [i for i, _ in rows],
                         "bodies": [document(unpack(r)) for _, r in rows]})
            if rows and rows[-1][0] > last:
                _set_last_id(connection, int(rows[-1][0]))
            return len(rows)

    def run(self, limit: int | None = None, pause: float = 0.0) -> int:
        """Index until up to date (or ``limit`` messages), ``pause`` seconds between batches;
        returns the count."""
        total = 0
        while limit is None or total < limit:
            done = self.run_once()
            total += done
            if done < self.batch:
                break
            time.sleep(pause)
        return total


_INDEXERS: dict[str, Indexer] = {}


def index_pending(url: str, limit: int) -> int:
    """Index up to ``limit`` messages of the store at ``url``: what the indexing process runs
    (its engine kept between calls); returns the count."""
    indexer = _INDEXERS.get(url)
    if indexer is None:

        indexer = _INDEXERS[url] = Indexer(make_engine(url, name=INDEXER_NAME),
                                           batch=PROCESS_BATCH)
    return indexer.run(limit, pause=PROCESS_PAUSE)


def forget(connection: Connection, rows: list[tuple[int, Any]]) -> None:
    """Remove pruned messages ``(id, stored raw)`` from SQLite's index (PostgreSQL cascades)."""
    if connection.dialect.name != "sqlite" or not rows:
        return
    last = _last_id(connection)
    indexed = [{"id": i, "body": text_of(unpack(r))} for i, r in rows if i <= last]
    if indexed:
        connection.execute(text("INSERT INTO message_fts(message_fts, rowid, body) "
                                "VALUES ('delete', :id, :body)"), indexed)
