"""The engine's event log (issue 19): deploys, channel state changes, breakers, alerts, logins,
users and reprocessing, one row each, for the dashboard's Events page.

``event_log(id, at, level, kind, channel, username, text)``: ``events`` already names each
message's own history, so the table is called ``event_log``. ``at`` is a ``Stamp`` like
``updated_at`` (microseconds on SQLite, ``timestamptz`` on PostgreSQL). Indexed for the page's
filters, newest first: by time, by channel and by kind. The writer keeps the newest rows only
(``store.eventlog.KEEP``).

Revision ID: 0008_events
Revises: 0007_cluster_state
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_events"
down_revision = "0007_cluster_state"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.DateTime(timezone=True).with_variant(sa.BigInteger(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "event_log",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("at", Stamp, nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(100)),
        sa.Column("username", sa.String(100)),
        sa.Column("text", sa.String(500), nullable=False))
    op.create_index("ix_event_log_at", "event_log", ["at"])
    op.create_index("ix_event_log_channel_id", "event_log", ["channel", "id"])
    op.create_index("ix_event_log_kind_id", "event_log", ["kind", "id"])


def downgrade() -> None:
    op.drop_table("event_log")
