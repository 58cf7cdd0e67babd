"""The versions of each channel's YAML (``channel_versions``): what was deployed, by whom, when
and why, so the dashboard can show the history, compare and roll back.

Numbers run per channel from 1. On PostgreSQL two deploys of one channel (from two processes)
take their numbers one after the other (a transaction-level advisory lock); should two still
read the same newest number (SQLite), the unique index turns the second insert away and it takes
the next number.
Recording the text the channel already has (same SHA-256 as its newest version) adds nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Row, func, select
from sqlalchemy.exc import IntegrityError

from conduit.store.tables import channel_versions

__all__ = ["ChannelVersions", "Version", "sha256"]

_ATTEMPTS = 5
#: First key of the advisory lock that orders one channel's new versions ("CVer"); leases use
#: another (``cluster.LEASE_CLASS``).
_LOCK_CLASS = 0x43566572


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Version:
    channel: str
    version: int
    yaml: str
    sha256: str
    username: str | None
    at: datetime
    comment: str | None


class ChannelVersions:
    """Reads and appends channel versions through the store's SQLAlchemy engine (blocking:
    callers on the event loop use a thread)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, channel: str, text: str, username: str | None,
               comment: str | None = None) -> Version:
        """Keep ``text`` as the channel's next version, unless it is already the newest."""
        digest = sha256(text)
        for attempt in range(_ATTEMPTS):
            try:
                with self.engine.begin() as connection:
                    if connection.dialect.name == "postgresql":
                        connection.execute(select(func.pg_advisory_xact_lock(
                            _LOCK_CLASS, func.hashtext(channel))))
                    newest = connection.execute(
                        select(channel_versions)
                        .where(channel_versions.c.channel == channel)
                        .order_by(channel_versions.c.version.desc()).limit(1)).first()
                    if newest is not None and newest.sha256 == digest:
                        return _version(newest)
                    made = Version(channel, (newest.version + 1) if newest else 1, text,
                                   digest, username, datetime.now(UTC), comment)
                    connection.execute(channel_versions.insert(), {
                        "channel": made.channel, "version": made.version, "yaml": made.yaml,
                        "sha256": made.sha256, "username": made.username, "at": made.at,
                        "comment": made.comment})
                    return made
            except IntegrityError:  # another deploy took that number: take the next one
                if attempt == _ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def list(self, channel: str) -> list[Version]:
        """Every version of ``channel``, newest first."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(channel_versions).where(channel_versions.c.channel == channel)
                .order_by(channel_versions.c.version.desc()))
            return [_version(row) for row in rows]

    def get(self, channel: str, version: int) -> Version | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(channel_versions).where(channel_versions.c.channel == channel,
                                               channel_versions.c.version == version)).first()
        return _version(row) if row is not None else None

    def newest(self, channel: str) -> Version | None:
        with self.engine.connect() as connection:
            number = connection.execute(
                select(func.max(channel_versions.c.version))
                .where(channel_versions.c.channel == channel)).scalar()
        return self.get(channel, number) if number is not None else None


def _version(row: Row[Any]) -> Version:
    mapping = row._mapping
    at = mapping["at"]
    return Version(channel=mapping["channel"], version=mapping["version"], yaml=mapping["yaml"],
                   sha256=mapping["sha256"], username=mapping["username"],
                   at=at if at.tzinfo else at.replace(tzinfo=UTC), comment=mapping["comment"])
