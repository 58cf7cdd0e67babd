"""Compact store (issue 7): every byte a row or an index entry takes is paid per message.

- ``deliveries`` is keyed by (message_id, destination) instead of a surrogate id plus a unique
  index on the same pair; ``position`` keeps the route order the id gave. SQLite: a WITHOUT ROWID
  table (rows live in the key's B-tree: no rowid, no second index), rebuilt here. PostgreSQL: the
  unique index becomes the primary key, the id column and its index go.
- ``ix_messages_message_type`` goes: the message-type search is a case-insensitive prefix
  ``LIKE``, which neither SQLite (BINARY collation) nor PostgreSQL (non-C collation) can answer
  from a B-tree, so the index was only ever written.
- Full text. SQLite's FTS5 table keeps no positions and no column sizes (``detail=none,
  columnsize=0``): a search is every word in any order (``fulltext.condition``), never a phrase
  or a ranking, so positions were 60% of the index for nothing. It is rebuilt empty and the
  indexer fills it again from the stored messages (its progress is reset). PostgreSQL's GIN index
  keeps a 256 kB pending list instead of 4 MB: merging a large list left the index at ~2.5x the
  size it has when built at once (and new documents are stored without positions, ``strip``).

Revision ID: 0004_compact_store
Revises: 0003_correlation_id
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0004_compact_store"
down_revision = "0003_correlation_id"
branch_labels = None
depends_on = None

_COLUMNS = "status, content, response, attempts, error, updated_at, sent_at"


def upgrade() -> None:
    op.drop_index("ix_messages_message_type", "messages")
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE TABLE deliveries_new ("
            " message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,"
            " destination VARCHAR(100) NOT NULL,"
            " position SMALLINT NOT NULL DEFAULT 0,"
            " status VARCHAR(16) NOT NULL, content BLOB, response BLOB,"
            " attempts INTEGER NOT NULL, error TEXT,"
            " updated_at DATETIME NOT NULL, sent_at DATETIME,"
            " PRIMARY KEY (message_id, destination)) WITHOUT ROWID")
        op.execute(
            f"INSERT INTO deliveries_new (message_id, destination, position, {_COLUMNS}) "
            "SELECT message_id, destination, "
            "row_number() OVER (PARTITION BY message_id ORDER BY id) - 1, "
            f"{_COLUMNS} FROM deliveries")
        op.execute("DROP TABLE deliveries")
        op.execute("ALTER TABLE deliveries_new RENAME TO deliveries")
        op.create_index("ix_deliveries_status", "deliveries", ["status", "message_id"])
        op.execute("DROP TABLE IF EXISTS message_fts")
        op.execute("CREATE VIRTUAL TABLE message_fts USING fts5(body, content='', "
                   "detail=none, columnsize=0)")
        op.execute("DELETE FROM store_state WHERE key = 'fulltext.last_id'")
    else:
        op.execute("ALTER TABLE deliveries ADD COLUMN position SMALLINT NOT NULL DEFAULT 0")
        op.execute(
            "UPDATE deliveries d SET position = r.n FROM (SELECT id, row_number() OVER "
            "(PARTITION BY message_id ORDER BY id) - 1 AS n FROM deliveries) r "
            "WHERE d.id = r.id AND r.n > 0")
        op.execute("ALTER TABLE deliveries DROP CONSTRAINT deliveries_pkey")
        op.execute("ALTER TABLE deliveries DROP COLUMN id")
        op.execute("ALTER TABLE deliveries DROP CONSTRAINT uq_deliveries_message_destination")
        op.execute("ALTER TABLE deliveries ADD CONSTRAINT deliveries_pkey "
                   "PRIMARY KEY (message_id, destination)")
        op.execute("ALTER INDEX ix_message_text_document SET (gin_pending_list_limit = 256)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE TABLE deliveries_old ("
            " id INTEGER NOT NULL PRIMARY KEY,"
            " message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,"
            " destination VARCHAR(100) NOT NULL,"
            " status VARCHAR(16) NOT NULL, content BLOB, response BLOB,"
            " attempts INTEGER NOT NULL, error TEXT,"
            " updated_at DATETIME NOT NULL, sent_at DATETIME,"
            " CONSTRAINT uq_deliveries_message_destination UNIQUE (message_id, destination))")
        op.execute(f"INSERT INTO deliveries_old (message_id, destination, {_COLUMNS}) "
                   f"SELECT message_id, destination, {_COLUMNS} FROM deliveries "
                   "ORDER BY message_id, position")
        op.execute("DROP TABLE deliveries")
        op.execute("ALTER TABLE deliveries_old RENAME TO deliveries")
        op.create_index("ix_deliveries_status", "deliveries", ["status", "message_id"])
        op.execute("DROP TABLE IF EXISTS message_fts")
        op.execute("CREATE VIRTUAL TABLE message_fts USING fts5(body, content='')")
        op.execute("DELETE FROM store_state WHERE key = 'fulltext.last_id'")
    else:
        op.execute("ALTER INDEX ix_message_text_document RESET (gin_pending_list_limit)")
        op.execute("ALTER TABLE deliveries DROP CONSTRAINT deliveries_pkey")
        op.execute("ALTER TABLE deliveries ADD CONSTRAINT uq_deliveries_message_destination "
                   "UNIQUE (message_id, destination)")
        op.execute("ALTER TABLE deliveries ADD COLUMN id BIGSERIAL PRIMARY KEY")
        op.execute("ALTER TABLE deliveries DROP COLUMN position")
    op.create_index("ix_messages_message_type", "messages", ["message_type"])
