"""Search fields (issue 16): the values operators search by, written with each message.

``search_fields(message_id, name, value)``: one row per field found in a message (patient
identifier authority, name, MRN, accession/order numbers, and what a channel names in
``search: {fields: [...]}``), keyed by message (retention's deletes cascade along the key) and
indexed on (name, value). SQLite keeps it WITHOUT ROWID: the rows live in the key's B-tree.

Chained to 0004: 0005 (user MFA/SSO) is on another branch; whoever merges both puts this one
after it (``down_revision = "0005_user_mfa_sso"``).

Revision ID: 0006_search_fields
Revises: 0004_compact_store
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0006_search_fields"
down_revision = "0004_compact_store"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bigint = "INTEGER" if op.get_bind().dialect.name == "sqlite" else "BIGINT"
    suffix = " WITHOUT ROWID" if op.get_bind().dialect.name == "sqlite" else ""
    op.execute(
        "CREATE TABLE search_fields ("
        f" message_id {bigint} NOT NULL REFERENCES messages (id) ON DELETE CASCADE,"
        " name VARCHAR(40) NOT NULL, value VARCHAR(200) NOT NULL,"
        f" PRIMARY KEY (message_id, name, value)){suffix}")
    op.create_index("ix_search_fields_name_value", "search_fields", ["name", "value"])


def downgrade() -> None:
    op.drop_index("ix_search_fields_name_value", "search_fields")
    op.drop_table("search_fields")
