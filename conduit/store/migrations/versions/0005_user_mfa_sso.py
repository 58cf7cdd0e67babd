"""Second factor and single sign-on for dashboard users (issue 17, item 11).

- ``totp_secret``: the user's TOTP secret (base32), set by ``conduit users mfa NAME``; null when
  the user has no second factor. ``totp_step``: the last time step a code was accepted for, so a
  code is good once (a code seen over a shoulder or in a log cannot be replayed).
- ``sso_subject``: ``<issuer>#<sub>`` for a user made by an OpenID Connect login; such a user has
  no usable password and is found again by this, never by name alone.

Revision ID: 0005_user_mfa_sso
Revises: 0004_compact_store
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_user_mfa_sso"
down_revision = "0004_compact_store"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("totp_secret", sa.String(64), nullable=True))
        batch.add_column(sa.Column("totp_step", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("sso_subject", sa.String(300), nullable=True))
        batch.create_index("ix_users_sso_subject", ["sso_subject"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_index("ix_users_sso_subject")
        batch.drop_column("sso_subject")
        batch.drop_column("totp_step")
        batch.drop_column("totp_secret")
