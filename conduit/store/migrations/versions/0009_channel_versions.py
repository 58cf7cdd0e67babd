"""Channel versions (issue 19): every channel YAML deployed from the dashboard's editor or the
API, so the previous one is always there to compare with and roll back to.

``channel_versions(channel, version, yaml, sha256, username, at, comment)``, one row per
deployed text, numbered per channel (unique on channel and version).

Revision ID: 0009_channel_versions
Revises: 0008_events
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_channel_versions"
down_revision = "0008_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_versions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("yaml", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("username", sa.String(100)),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("comment", sa.Text))
    op.create_index("ix_channel_versions_channel_version", "channel_versions",
                    ["channel", "version"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_channel_versions_channel_version", "channel_versions")
    op.drop_table("channel_versions")
