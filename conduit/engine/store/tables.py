"""The store's tables (SQLAlchemy Core). Alembic migrations in ``migrations/`` create them.

Content columns hold zlib-compressed bytes (see ``codec``): HL7 compresses 3-5x, and the store
keeps raw, transformed and sent content for every message.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# SQLite only makes INTEGER PRIMARY KEY an alias of the rowid (auto-increment, fast).
Id = BigInteger().with_variant(Integer(), "sqlite")

messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("channel", String(100), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False),
    Column("control_id", String(200)),
    Column("message_type", String(40)),
    Column("patient_id", String(200)),
    Column("source", String(200)),
    Column("raw", LargeBinary, nullable=False),
    Column("transformed", LargeBinary),
    Column("error", Text),
    Column("correlation_id", String(100)),
    Index("ix_messages_channel_status", "channel", "status", "id"),
    Index("ix_messages_received_at", "received_at"),
    Index("ix_messages_control_id", "control_id"),
    Index("ix_messages_message_type", "message_type"),
    Index("ix_messages_patient_id", "patient_id"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_id", Id, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("destination", String(100), nullable=False),
    Column("status", String(16), nullable=False),
    Column("content", LargeBinary),
    Column("response", LargeBinary),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    UniqueConstraint("message_id", "destination", name="uq_deliveries_message_destination"),
    Index("ix_deliveries_status", "status", "message_id"),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_id", Id, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("detail", Text),
    Index("ix_events_message_id", "message_id"),
)
