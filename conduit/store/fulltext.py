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

Only the channels that ask for it are indexed (``search: {full_text: true}``; the search fields
written with every message answer the usual searches). Progress is kept in ``store_state``
(``fulltext.last_id``): each batch walks ``messages`` by its key from there, so a pass costs
per batch, never per store size (a look-back with an anti-join over ``message_text`` read 634 M
rows in 10 minutes). On PostgreSQL several engine processes may commit ids out of order: the
ids a batch skipped are looked up again by key (``Indexer._late``; ``ON CONFLICT DO NOTHING``
keeps that idempotent). How far behind it is: :func:`lag`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Integer, bindparam, case, column, func, select, text
from sqlalchemy.sql.elements import ColumnElement

from conduit.store.codec import unpack
from conduit.store.connect import INDEXER_NAME, make_engine
from conduit.store.tables import messages, store_state

MAX_CHARS = 100_000
#: PostgreSQL: how long an id skipped by the walk is looked for again, and how many at most.
GAP_SECONDS = 60.0
GAPS_MAX = 10_000
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
    """Indexes the messages of the channels that opted in (``search: {full_text: true}``),
    ``batch`` at a time, walking ``messages`` by its primary key from where it stopped: each
    batch costs the same whatever the store's size (no scan of ``messages``, no anti-join over
    ``message_text``). Messages of other channels are stepped over without reading their
    content.

    PostgreSQL: several engine processes commit ids out of order, so an id skipped by a batch
    (a hole below ids already seen) is looked up again by key on the next passes until it
    appears or ``GAP_SECONDS`` pass (a rolled-back insert or a pruned message never will).
    """

    def __init__(self, engine: Engine, batch: int = 2000) -> None:
        self.engine = engine
        self.batch = batch
        self.sqlite = engine.dialect.name == "sqlite"
        #: PostgreSQL: ids skipped by the walk -> when first missed (monotonic)
        self._gaps: dict[int, float] = {}

    def run_once(self, channels: Collection[str] | None = None) -> int:
        """Index one batch of the messages of ``channels`` (None: every channel); returns how
        many messages the walk passed (0: up to date)."""
        with self.engine.begin() as connection:
            last = _last_id(connection)
            if channels is not None and not channels:  # nothing to index: skip to the end
                top = connection.execute(select(func.max(messages.c.id))).scalar() or 0
                if top > last:
                    _set_last_id(connection, int(top))
                self._gaps.clear()
                return 0
            content = (messages.c.raw if channels is None else
                       case((messages.c.channel.in_(sorted(channels)), messages.c.raw),
                            else_=None))
            rows = connection.execute(
                select(messages.c.id, content).where(messages.c.id > last)
                .order_by(messages.c.id).limit(self.batch)).all()
            found = [(int(i), r) for i, r in rows]
            if not self.sqlite:
                found += self._late(connection, content, last, [i for i, _ in found])
            documents = [(i, r) for i, r in found if r is not None]
            if documents and self.sqlite:
                connection.execute(
                    text("INSERT INTO message_fts(rowid, body) VALUES (:id, :body)"),
                    [{"id": i, "body": text_of(unpack(r))} for i, r in documents])
            elif documents:  # one statement for the batch: a plan per row cost as much again
                connection.execute(text(
                    "INSERT INTO message_text (message_id, document) "
                    "SELECT id, strip(to_tsvector('simple', body)) "
                    "FROM unnest(CAST(:ids AS bigint[]), CAST(:bodies AS text[])) "
                    "AS batch(id, body) ON CONFLICT DO NOTHING"),
                    {"ids": [i for i, _ in documents],
                     "bodies": [document(unpack(r)) for _, r in documents]})
            if rows and rows[-1][0] > last:
                _set_last_id(connection, int(rows[-1][0]))
            return len(rows)

    def _late(self, connection: Connection, content: Any, last: int,
              walked: list[int]) -> list[tuple[int, Any]]:
        """PostgreSQL: the skipped ids committed since (looked up by key), and the holes of
        this batch remembered for the next passes."""
        moment = time.monotonic()
        for expected, seen in zip([last, *walked], walked, strict=False):
            for hole in range(expected + 1, min(seen, expected + 1 + GAPS_MAX)):
                self._gaps.setdefault(hole, moment)
        for hole, since in list(self._gaps.items()):
            if moment - since > GAP_SECONDS:  # rolled back, or pruned: it will not come
                del self._gaps[hole]
        while len(self._gaps) > GAPS_MAX:
            del self._gaps[next(iter(self._gaps))]
        if not self._gaps:
            return []
        rows = connection.execute(select(messages.c.id, content)
                                  .where(messages.c.id.in_(list(self._gaps)))).all()
        for i, _ in rows:
            self._gaps.pop(int(i), None)
        return [(int(i), r) for i, r in rows]

    def run(self, limit: int | None = None, pause: float = 0.0,
            channels: Collection[str] | None = None) -> int:
        """Index until up to date (or ``limit`` messages walked), ``pause`` seconds between
        batches; returns the count walked."""
        total = 0
        while limit is None or total < limit:
            done = self.run_once(channels)
            total += done
            if done < self.batch:
                break
            time.sleep(pause)
        return total


def lag(connection: Connection) -> tuple[int, float]:
    """How far the index is behind: messages not yet walked (by id, so an estimate when ids
    have holes) and the seconds since the oldest of them arrived. Two lookups by key."""
    last = _last_id(connection)
    top = connection.execute(select(func.max(messages.c.id))).scalar() or 0
    if top <= last:
        return 0, 0.0
    oldest = connection.execute(select(messages.c.received_at).where(messages.c.id > last)
                                .order_by(messages.c.id).limit(1)).scalar()
    seconds = 0.0
    if oldest is not None:
        if oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        seconds = max(0.0, (datetime.now(UTC) - oldest).total_seconds())
    return int(top - last), seconds


def optimize(connection: Connection) -> None:
    """SQLite: merge FTS5's segments, so the entries of deleted messages leave the index (a
    contentless table records a delete as one more entry until then: pruning half of a 1 M
    message store left the index at 124 MB, 35 MB after this). PostgreSQL's index shrinks
    with its table (retention's VACUUM)."""
    if connection.dialect.name == "sqlite":
        connection.execute(text("INSERT INTO message_fts(message_fts) VALUES ('optimize')"))


_INDEXERS: dict[str, Indexer] = {}


def index_pending(url: str, limit: int, channels: Collection[str] | None = None) -> int:
    """Index up to ``limit`` messages of ``channels`` in the store at ``url``: what the
    indexing process runs (its engine and gaps kept between calls); returns the count."""
    indexer = _INDEXERS.get(url)
    if indexer is None:

        indexer = _INDEXERS[url] = Indexer(make_engine(url, name=INDEXER_NAME),
                                           batch=PROCESS_BATCH)
    return indexer.run(limit, pause=PROCESS_PAUSE, channels=channels)


def forget(connection: Connection, rows: list[tuple[int, Any]]) -> None:
    """Remove pruned messages ``(id, stored raw)`` from SQLite's index (PostgreSQL cascades)."""
    if connection.dialect.name != "sqlite" or not rows:
        return
    last = _last_id(connection)
    indexed = [{"id": i, "body": text_of(unpack(r))} for i, r in rows if i <= last]
    if indexed:
        connection.execute(text("INSERT INTO message_fts(message_fts, rowid, body) "
                                "VALUES ('delete', :id, :body)"), indexed)
