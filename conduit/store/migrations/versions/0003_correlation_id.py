"""Correlation id per message: the sender's X-Request-Id (HTTP, SOAP, FHIR listeners), MSH-10 or
a new id, passed on to HTTP-based destinations as X-Request-Id. Nullable: older rows have none.

Revision ID: 0003_correlation_id
Revises: 0002_web
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_correlation_id"
down_revision = "0002_web"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("correlation_id", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("correlation_id")
