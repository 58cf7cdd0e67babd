"""Search fields found by their index alone on PostgreSQL (issue 19: page times).

SQLite keeps ``search_fields`` WITHOUT ROWID keyed by (message_id, name, value), so its
(name, value) index already ends with the message id: a search reads the matching ids off the
index, newest first, and stops at a page. PostgreSQL's (name, value) index did not have it: a
search for a common value (a family name, the identifier authority every message shares) read
every matching row from the heap and sorted their ids before the first page (1,000,000
messages: PID-5.1 of one message in 18, 0.1-0.4 s; PID-3.4 of all of them, 0.64 s). With the
message id in the key the newest 50 are read in under a millisecond. The price: the index no
longer deduplicates equal values (36 MB to 155 MB for 4 fields of a million messages).

Building it holds writes to ``search_fields`` (about 11 s for 4 million rows); the engine
migrates before it takes messages.

Revision ID: 0010_pg_page_indexes
Revises: 0009_channel_versions
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0010_pg_page_indexes"
down_revision = "0009_channel_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index("ix_search_fields_name_value_id", "search_fields",
                    ["name", "value", "message_id"])
    op.drop_index("ix_search_fields_name_value", "search_fields")
    op.execute("ALTER INDEX ix_search_fields_name_value_id RENAME TO ix_search_fields_name_value")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_search_fields_name_value", "search_fields")
    op.create_index("ix_search_fields_name_value", "search_fields", ["name", "value"])
