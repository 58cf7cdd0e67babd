"""Search fields (issue 16): the values operators search by, written with each message.

``search_fields(message_id, name, value)``: one row per field found in a message (patient
identifier authority, name, MRN, accession/order numbers, and what a channel names in
``search: {fields: [...]}``), indexed on (name, value); retention deletes them with their
messages. SQLite keeps it WITHOUT ROWID keyed by (message_id, name, value): the
rows live in the key's B-tree. PostgreSQL keeps a heap with a BRIN index on the message id.


Revision ID: 0006_search_fields
Revises: 0005_user_mfa_sso
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0006_search_fields"
down_revision = "0005_user_mfa_sso"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE TABLE search_fields ("
            " message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,"
            " name VARCHAR(40) NOT NULL, value VARCHAR(200) NOT NULL,"
            " PRIMARY KEY (message_id, name, value)) WITHOUT ROWID")
    else:
        # No primary key and no foreign key: rows are written once with their message, never
        # updated, and a B-tree on the message id cost 175 bytes a message (40% of the table).
        # Retention deletes a batch's rows itself, by id range through a BRIN index (ids grow
        # with the table: a few kB for the whole index); a cascade would look them up once per
        # message (10x the time of the rest of the prune). Ids of a sequence are never reused.
        op.execute(
            "CREATE TABLE search_fields ("
            " message_id BIGINT NOT NULL,"
            " name VARCHAR(40) NOT NULL, value VARCHAR(200) NOT NULL)")
        op.execute("CREATE INDEX ix_search_fields_message_id ON search_fields "
                   "USING brin (message_id) WITH (pages_per_range = 8)")
    op.create_index("ix_search_fields_name_value", "search_fields", ["name", "value"])


def downgrade() -> None:
    op.drop_index("ix_search_fields_name_value", "search_fields")
    op.drop_table("search_fields")
