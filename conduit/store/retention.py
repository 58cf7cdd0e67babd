"""Retention: prune old messages by age, per channel and status, and give the disk back.

Rules (``retention.rules`` in the settings, or ``conduit prune`` options) name a channel (or all
channels), the statuses to prune and an age. A channel with rules of its own is left alone by
the rules for all channels. QUEUED, RECEIVED and ERROR messages are work still to do or to look at:
a rule prunes them only when it says ``include_unfinished: true``.

Deletes run in batches (``retention.batch`` messages a transaction, deliveries and events going
with them by foreign key), so the engine's writers are never held up for long. Then:

- SQLite: ``PRAGMA incremental_vacuum`` returns the freed pages to the file system (the store is
  created with ``auto_vacuum=INCREMENTAL``; an older file needs one ``VACUUM`` first:
  ``conduit prune --vacuum-full``). Pruned messages also leave the FTS5 index, which is then
  optimized (merged): a contentless FTS5 table records each delete as one more entry until then.
- PostgreSQL: ``VACUUM (ANALYZE)`` makes the space reusable at once (and truncates empty pages at
  the end of the tables); the store stops growing once retention keeps pace with intake. Time
  partitions were considered and left out: the rules are per channel and status, and a partition
  holding one QUEUED or ERROR message could not be dropped, so partitions would not spare the
  row deletes; ``VACUUM FULL`` (``--vacuum-full``) shrinks the files when an operator can afford
  its lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, delete, select, text

from conduit.core.duration import Duration
from conduit.store.fulltext import forget, optimize
from conduit.store.tables import messages, search_fields

log = structlog.get_logger(__name__)

FINISHED = ("SENT", "FILTERED", "TRANSFORMED")
UNFINISHED = ("RECEIVED", "QUEUED", "ERROR")


class RetentionRule(BaseModel):
    """Messages of `channel` (default every one) in `statuses` older than `older_than` go."""

    model_config = ConfigDict(extra="forbid")

    channel: str | None = None
    older_than: Duration
    statuses: list[str] = Field(default_factory=lambda: ["SENT", "FILTERED", "TRANSFORMED"])
    include_unfinished: bool = Field(
        False, description="Also allow QUEUED, RECEIVED and ERROR in `statuses` (never by "
                           "default: those are work still to do or to look at).")


class RetentionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interval: Duration = Field(3600, description="How often the engine prunes (0 = never).")
    batch: int = Field(5000, ge=1, description="Rows deleted per transaction.")
    rules: list[RetentionRule] = Field(default_factory=list)


class RetentionError(ValueError):
    pass


@dataclass
class PruneResult:
    deleted: dict[str, int] = field(default_factory=dict)  # channel -> messages
    seconds: float = 0.0
    vacuumed: str = ""

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


def check_rule(rule: RetentionRule) -> list[str]:
    statuses = [s.upper() for s in rule.statuses]
    unknown = [s for s in statuses if s not in FINISHED + UNFINISHED]
    if unknown:
        raise RetentionError(f"unknown status {', '.join(unknown)}")
    unfinished = [s for s in statuses if s in UNFINISHED]
    if unfinished and not rule.include_unfinished:
        raise RetentionError(f"pruning {', '.join(unfinished)} messages needs "
                             "include_unfinished: true (--include-unfinished)")
    return statuses


def prune_once(engine: Engine, settings: RetentionSettings, *, dry_run: bool = False,
               vacuum_full: bool = False, now: datetime | None = None) -> PruneResult:
    """Apply every rule once; returns how many messages went, per channel."""
    began = time.monotonic()
    result = PruneResult()
    stamp = now or datetime.now(UTC)
    specific = sorted({r.channel for r in settings.rules if r.channel})
    for rule in settings.rules:
        statuses = check_rule(rule)
        conditions: list[Any] = [messages.c.status.in_(statuses),
                                 messages.c.received_at < stamp - timedelta(
                                     seconds=rule.older_than)]
        if rule.channel:
            conditions.append(messages.c.channel == rule.channel)
        elif specific:
            conditions.append(messages.c.channel.not_in(specific))
        if dry_run:
            with engine.connect() as connection:
                query = (select(messages.c.channel, messages.c.id).where(*conditions))
                for channel, _ in connection.execute(query):
                    result.deleted[channel] = result.deleted.get(channel, 0) + 1
            continue
        while True:
            with engine.begin() as connection:
                rows = connection.execute(
                    select(messages.c.id, messages.c.channel, messages.c.raw)
                    .where(*conditions).order_by(messages.c.id).limit(settings.batch)).all()
                if not rows:
                    break
                forget(connection, [(r.id, r.raw) for r in rows])
                ids = [r.id for r in rows]
                # PostgreSQL keeps no foreign key on search fields (see migration 0006): the
                # batch's rows go by id range (its BRIN index), then by id
                connection.execute(delete(search_fields).where(
                    search_fields.c.message_id.between(ids[0], ids[-1]),
                    search_fields.c.message_id.in_(ids)))
                connection.execute(delete(messages).where(messages.c.id.in_(ids)))
            for row in rows:
                result.deleted[row.channel] = result.deleted.get(row.channel, 0) + 1
            if len(rows) < settings.batch:
                break
    if not dry_run and result.total and engine.dialect.name == "sqlite":
        with engine.begin() as connection:
            optimize(connection)
    if not dry_run and (result.total or vacuum_full):
        result.vacuumed = vacuum(engine, full=vacuum_full)
    result.seconds = round(time.monotonic() - began, 3)
    if result.total and not dry_run:
        log.info("pruned messages", deleted=result.deleted, seconds=result.seconds,
                 vacuum=result.vacuumed)
    return result


def vacuum(engine: Engine, *, full: bool = False) -> str:
    """Give freed space back; returns what was done."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if engine.dialect.name == "sqlite":
            mode = connection.execute(text("PRAGMA auto_vacuum")).scalar()
            if full or mode != 2:
                if not full:
                    log.warning("store file has no incremental vacuum: run "
                                "`conduit prune --vacuum-full` once to give space back")
                    return "none (auto_vacuum off)"
                connection.execute(text("PRAGMA auto_vacuum=INCREMENTAL"))
                connection.execute(text("VACUUM"))
                return "vacuum (auto_vacuum now incremental)"
            driver = connection.connection.driver_connection
            assert driver is not None
            # executescript steps the pragma to the end (execute frees only one page)
            driver.executescript("PRAGMA incremental_vacuum;")
            connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            return "incremental_vacuum"
        tables = "messages, deliveries, events, message_text, search_fields"
        options = "FULL, ANALYZE" if full else "ANALYZE"
        connection.execute(text(f"VACUUM ({options}) {tables}"))
        return "vacuum full" if full else "vacuum"
