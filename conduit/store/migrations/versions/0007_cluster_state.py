"""Cluster state (issue 16, item 4): what every engine process sharing one PostgreSQL store
shares, so a cluster has one set of limits.

- ``cluster_limits``: per rate-limited destination, the next free send slot (seconds since the
  epoch on the server's clock); a process takes permits by moving it forward in one statement.
- ``cluster_breakers``: per destination with a breaker, when it was opened (NULL: closed) and the
  failures that opened it.
- ``cluster_tokens``: OAuth2 access tokens, encrypted with a key derived from the client's
  secret (the database alone does not reveal them), until they expire.

PostgreSQL only: an embedded (SQLite) engine is one process and keeps this state in memory.

Revision ID: 0007_cluster_state
Revises: 0006_search_fields
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_cluster_state"
down_revision = "0006_search_fields"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_table(
        "cluster_limits",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("next_at", sa.Float(precision=53), nullable=False))
    op.create_table(
        "cluster_breakers",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("opened_at", sa.Float(precision=53), nullable=True),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "cluster_tokens",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("token", sa.LargeBinary, nullable=False),
        sa.Column("expires_at", sa.Float(precision=53), nullable=False))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in ("cluster_tokens", "cluster_breakers", "cluster_limits"):
        op.drop_table(table)
