"""The store's tables (SQLAlchemy Core). Alembic migrations in ``migrations/`` create them.

Content columns hold compressed bytes (see ``codec``): the store keeps raw, transformed and sent
content for every message, so every byte a row takes is paid per message.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

metadata = MetaData()

# SQLite only makes INTEGER PRIMARY KEY an alias of the rowid (auto-increment, fast).
Id = BigInteger().with_variant(Integer(), "sqlite")

_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)


def microseconds(value: datetime) -> int:
    """A time as SQLite keeps ``Stamp`` columns: microseconds since 1970 UTC (naive = UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return (value - _EPOCH) // _MICROSECOND


def sqlite_text(value: datetime) -> str:
    """A time as SQLAlchemy keeps DATETIME columns on SQLite (``received_at``): UTC fields,
    ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def sqlite_now() -> tuple[str, int]:
    """The time now as SQLite keeps a new message's ``received_at`` (``sqlite_text``) and a
    ``Stamp`` column (``microseconds``), from one clock read: formatting it with ``isoformat``
    instead of ``strftime`` is a third of the cost, on every message received."""
    micros = time.time_ns() // 1000
    return (_EPOCH + timedelta(microseconds=micros)).isoformat(" ", "microseconds"), micros


class _Microseconds(TypeDecorator[datetime]):
    """A UTC time kept by SQLite as an integer of microseconds since 1970: 8 bytes instead of
    SQLAlchemy's 26-character text, and no string formatting per row written. Reads give naive
    UTC datetimes, as SQLite's DATETIME did (and read text left by older versions too).

    Only for columns no query compares or formats in SQL (``received_at`` stays text: the
    statistics group by its text prefix)."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else microseconds(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return datetime.fromisoformat(value).replace(tzinfo=None)
        return _EPOCH + timedelta(microseconds=value)


#: When a row was last updated, sent, …: ``timestamp with time zone`` on PostgreSQL.
Stamp = DateTime(timezone=True).with_variant(_Microseconds(), "sqlite")

messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("channel", String(100), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", Stamp, nullable=False),
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
    Index("ix_messages_patient_id", "patient_id"),
)

# One row per message and destination, keyed by both: on SQLite a WITHOUT ROWID table (the rows
# live in the key's B-tree, so no rowid and no second index to find a delivery).
deliveries = Table(
    "deliveries",
    metadata,
    Column("message_id", Id, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("destination", String(100), primary_key=True),
    Column("position", SmallInteger, nullable=False, default=0),  # route order in the channel
    Column("status", String(16), nullable=False),
    Column("content", LargeBinary),
    Column("response", LargeBinary),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("updated_at", Stamp, nullable=False),
    # NULL while SENT means "at updated_at" (the two were the same moment; see Store.get)
    Column("sent_at", Stamp),
    # SQLite only: PostgreSQL drops it (migration 0013) so that an outcome is a HOT update, and
    # reads open deliveries through their messages (``unsettled``)
    Index("ix_deliveries_status", "status", "message_id"),
    sqlite_with_rowid=False,
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_id", Id, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("at", Stamp, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("detail", Text),
    Index("ix_events_message_id", "message_id"),
)

#: The engine's event log (issue 19): what happened to the engine, not to a message (deploys,
#: state changes, breakers, alerts, logins, users, reprocessing); PHI-free by construction.
#: (``events`` above is each message's own history.) Newest N kept (``store.eventlog``).
event_log = Table(
    "event_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", Stamp, nullable=False),
    Column("level", String(8), nullable=False),  # info | warning | error
    Column("kind", String(40), nullable=False),  # e.g. channel.paused, login.failed
    Column("channel", String(100)),
    Column("username", String(100)),
    Column("text", String(500), nullable=False),
    Index("ix_event_log_at", "at"),
    Index("ix_event_log_channel_id", "channel", "id"),
    Index("ix_event_log_kind_id", "kind", "id"),
)

#: Search fields (issue 16): a few values per message an operator searches by (patient
#: identifier's authority, name, MRN, accession and order numbers, and the fields a channel names
#: in ``search: {fields: [...]}``), written with the message in the same commit, searched by
#: (name, value). SQLite: keyed by message first (deletes cascade along it). PostgreSQL: no key,
#: a BRIN index on the message id, retention deletes the rows (migration 0006).
search_fields = Table(
    "search_fields",
    metadata,
    Column("message_id", Id, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(40), primary_key=True),
    Column("value", String(200), primary_key=True),
    # the message id ends the key so a search reads the newest matches off the index alone
    # (SQLite's index ends with the table's key anyway; PostgreSQL: migration 0010)
    Index("ix_search_fields_name_value", "name", "value", "message_id"),
    sqlite_with_rowid=False,
)

#: Small key/value progress of background jobs (e.g. the full-text index's ``fulltext.last_id``).
store_state = Table(
    "store_state",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", String(200), nullable=False),
)

#: Every version of a channel's YAML deployed from the dashboard or the API (migration
#: ``0009_channel_versions``): the text as written (secrets behind ``${VAR}`` stay placeholders),
#: who deployed it and why; numbered per channel from 1, never rewritten, so a rollback is a
#: new version with an old text.
channel_versions = Table(
    "channel_versions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("channel", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("yaml", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("username", String(100)),  # None: the file as found on disk, kept before an edit
    Column("at", DateTime(timezone=True), nullable=False),
    Column("comment", Text),
    Index("ix_channel_versions_channel_version", "channel", "version", unique=True),
)
