"""Initial store: messages, deliveries, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("received_at", When, nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("control_id", sa.String(200)),
        sa.Column("message_type", sa.String(40)),
        sa.Column("patient_id", sa.String(200)),
        sa.Column("source", sa.String(200)),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.Column("transformed", sa.LargeBinary),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_messages_channel_status", "messages", ["channel", "status", "id"])
    op.create_index("ix_messages_received_at", "messages", ["received_at"])
    op.create_index("ix_messages_control_id", "messages", ["control_id"])
    op.create_index("ix_messages_message_type", "messages", ["message_type"])
    op.create_index("ix_messages_patient_id", "messages", ["patient_id"])
    op.create_table(
        "deliveries",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("message_id", Id, sa.ForeignKey("messages.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("destination", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("content", sa.LargeBinary),
        sa.Column("response", sa.LargeBinary),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("updated_at", When, nullable=False),
        sa.Column("sent_at", When),
        sa.UniqueConstraint("message_id", "destination",
                            name="uq_deliveries_message_destination"),
    )
    op.create_index("ix_deliveries_status", "deliveries", ["status", "message_id"])
    op.create_table(
        "events",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("message_id", Id, sa.ForeignKey("messages.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("at", When, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_events_message_id", "events", ["message_id"])


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("deliveries")
    op.drop_table("messages")
