"""The message store: every stage of every message, searchable, on SQLite or PostgreSQL."""

from conduit.store.store import DeliveryRecord, MessageRecord, Store

__all__ = ["DeliveryRecord", "MessageRecord", "Store"]
