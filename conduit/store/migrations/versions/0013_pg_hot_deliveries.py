"""PostgreSQL: a delivery's outcome is written as a HOT update (issue 16, store size).

Every delivery is inserted QUEUED and rewritten once with its outcome. PostgreSQL can apply
that update in place of a new index entry (a heap-only tuple, pruned within its page without
vacuum) only when no index refers to a column the update changes and the page has room for
the new version. ``ix_deliveries_status`` named ``status`` (in its key and its partial
predicate), so every outcome wrote a new primary key entry and left a dead copy of the row until
vacuum. It is dropped: a delivery not SENT belongs to a message not SENT (the store settles a
message SENT only once all its deliveries are final and none failed), so its readers start
from the messages' partial status indexes and find the deliveries by primary key.

The table keeps the default fill factor (100). Deliveries heap bytes a message and the share of
outcomes written HOT, by fill factor (``tests/store/test_store_size.py``, 5,000 messages, no
vacuum): 100 -> 308 bytes, 93 %; 95 -> 329, 92 %; 90 -> 344, 99 %; 80 -> 385, 99.5 %; 70 and
less -> 513, 100 %. Inserts fill a page only up to the fill factor and, without vacuum, the space
pruning frees is not offered to inserts again (the free space map learns it from vacuum): the
reserve costs more than the few outcomes that find no room (written as before) save.

SQLite is unchanged (it rewrites a row in place, and keeps ``ix_deliveries_status``).

Revision ID: 0013_pg_hot_deliveries
Revises: 0012_pg_size
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0013_pg_hot_deliveries"
down_revision = "0012_pg_size"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_deliveries_status")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE INDEX ix_deliveries_status ON deliveries (status, message_id) "
               "WHERE status <> 'SENT'")
