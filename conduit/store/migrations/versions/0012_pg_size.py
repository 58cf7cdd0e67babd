"""PostgreSQL store size (issue 16): status indexes leave SENT out; content is not compressed twice.

A message and its deliveries are written QUEUED and rewritten SENT when they settle. PostgreSQL
writes an update as a new row version, and the old version stays until vacuum; as long as an
indexed column changes (``status``), it also adds an entry to every index of the table. A
partial index does not change that (on PostgreSQL 15 a column of its ``WHERE`` blocks a HOT
update as a key column does), but leaving SENT out of the status indexes means the settled rows,
the great majority, are never entered in them: ``ix_messages_channel_status``,
``ix_messages_status_id`` and ``ix_deliveries_status`` keep unfinished, failed and filtered rows
only (a search for SENT walks the channel's or the table's id index, where nearly every row is
one). The bench's store: 2,245 -> 1,850 bytes a message.

Content columns hold deflated bytes (``codec``): ``STORAGE EXTERNAL`` keeps PostgreSQL from
trying its own compression on them when a row passes 2 kB (it is moved out of line as it is).

SQLite is unchanged (it updates rows in place and its planner would not prove ``status = 'ERROR'``
implies ``status <> 'SENT'``).

Revision ID: 0012_pg_size
Revises: 0010_pg_page_indexes
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0012_pg_size"
down_revision = "0010_pg_page_indexes"
branch_labels = None
depends_on = None

#: (index, table, columns)
_STATUS_INDEXES = (("ix_messages_channel_status", "messages", "channel, status, id"),
                   ("ix_messages_status_id", "messages", "status, id"),
                   ("ix_deliveries_status", "deliveries", "status, message_id"))
_CONTENT = (("messages", "raw"), ("messages", "transformed"),
            ("deliveries", "content"), ("deliveries", "response"))


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for index, table, columns in _STATUS_INDEXES:
        op.execute(f"DROP INDEX {index}")
        op.execute(f"CREATE INDEX {index} ON {table} ({columns}) WHERE status <> 'SENT'")
    for table, column in _CONTENT:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in _CONTENT:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE EXTENDED")
    for index, table, columns in _STATUS_INDEXES:
        op.execute(f"DROP INDEX {index}")
        op.execute(f"CREATE INDEX {index} ON {table} ({columns})")
