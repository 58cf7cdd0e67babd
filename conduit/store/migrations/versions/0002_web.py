"""Dashboard: users, sessions and API tokens, access audit, full-text index, browsing indexes.

Full text: the stored raw content is compressed, so the index is filled by the engine's indexer
(:mod:`conduit.store.fulltext`) rather than by triggers. SQLite: a contentless FTS5 table
(rowid = message id; the text is not kept twice). PostgreSQL: a tsvector per message with a GIN
index, removed with its message by the foreign key.

Revision ID: 0002_web
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_web"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", When, nullable=False),
    )
    op.create_table(
        "auth_tokens",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("csrf", sa.String(64)),
        sa.Column("label", sa.String(200)),
        sa.Column("remote", sa.String(200)),
        sa.Column("created_at", When, nullable=False),
        sa.Column("expires_at", When),
    )
    op.create_index("ix_auth_tokens_username", "auth_tokens", ["username"])
    op.create_table(
        "audit_log",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("at", When, nullable=False),
        sa.Column("username", sa.String(100)),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("message_id", Id),
        sa.Column("remote", sa.String(200)),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_message_id", "audit_log", ["message_id"])
    op.create_table(
        "store_state",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.String(200), nullable=False),
    )
    # The message browser pages newest first (ORDER BY id DESC) within a channel or a status.
    op.create_index("ix_messages_channel_id", "messages", ["channel", "id"])
    op.create_index("ix_messages_status_id", "messages", ["status", "id"])
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE VIRTUAL TABLE message_fts USING fts5(body, content='')")
    else:
        op.create_table(
            "message_text",
            sa.Column("message_id", Id, sa.ForeignKey("messages.id", ondelete="CASCADE"),
                      primary_key=True),
            sa.Column("document", sa.dialects.postgresql.TSVECTOR, nullable=False),
        )
        op.execute("CREATE INDEX ix_message_text_document ON message_text USING gin (document)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS message_fts")
    else:
        op.drop_table("message_text")
    op.drop_index("ix_messages_status_id", "messages")
    op.drop_index("ix_messages_channel_id", "messages")
    for table in ("store_state", "audit_log", "auth_tokens", "users"):
        op.drop_table(table)
