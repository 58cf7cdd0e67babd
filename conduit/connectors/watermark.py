"""The database source's watermark window: what makes a watermark poll skip nothing.

A plain watermark (``WHERE id > :watermark`` with the last row's value) loses rows in two ways:
rows that share the last value but are written after the poll (a ``timestamp(0)`` column: every
row of that second written later), and rows whose transaction commits after a later value was
read (id 5 commits after id 6). So the query is not given the highest value read but a
*window's low end*, an older high value, and every row read again inside the window is
recognised by its digest (watermark value + key) and skipped: rows are re-read, never re-sent.

The low end moves up to a high value ``H`` (a *checkpoint*, written after each complete poll)
only once both hold:

- ``lookback`` has passed since ``H`` was read: a row committed up to ``lookback`` (less one
  poll interval) after a later-valued row is still inside the window; this covers every
  database, and values the application computes itself;
- on PostgreSQL, every transaction that was open when ``H`` was read has ended, and a whole poll
  has read the window since (``txid_snapshot_xmax`` after the read, against the
  ``txid_snapshot_xmin`` before a later read): a row whose transaction had written it before
  ``H`` was read and commits after, however long it stays open, is in the window when it becomes
  visible. With ids from a sequence (``SERIAL``, ``IDENTITY``), or ``now()`` stamps written by a
  transaction's first statement, that is every row. This is PostgreSQL's own commit order, with
  no column to add.

What stays with ``lookback`` alone: a transaction that takes its value before it writes (a
sequence value fetched ahead by an ORM, a ``now()`` stamp written long after ``BEGIN``), values
the application computes, and databases other than PostgreSQL (on SQLite writers take turns, so
ids commit in order). And the query should take rows *at* the low end (``>= :watermark``): with
``>``, a row sharing the low end's value that commits after the low end moved up to it (a
``timestamp(0)`` row of the same second) is skipped unless ``lookback`` is longer than that.

Why this rather than a watermark on ``xmin``: it needs nothing from the user's query, works on
SQLite and every database the same way, and costs one re-read of the window per poll.

The window survives a restart: checkpoints and digests are appended (fsynced) to a small
journal under the engine's data folder as each row is accepted, and compacted now and then.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from conduit.core.private import append_durably, private_folder, replace_durably

log = structlog.get_logger(__name__)


def canonical(value: Any) -> str:
    """One text per value, the same before and after a restart (JSON, ``str`` for the rest)."""
    return json.dumps(value, default=str, sort_keys=True, separators=(",", ":"))


def digest(value: Any, key: Any) -> str:
    """What identifies a row read: its watermark value and its key (or the whole row)."""
    text = canonical([value, key]).encode("utf-8")
    return hashlib.blake2b(text, digest_size=16).hexdigest()


@dataclass(slots=True)
class Checkpoint:
    number: int
    at: float
    """``time.time()`` when the poll that read ``high`` ended."""
    high: Any
    xmax: int | None
    """PostgreSQL: ``txid_snapshot_xmax`` after the read (every transaction id handed out)."""


class WatermarkWindow:
    """Checkpoints and the digests of rows read since the low end, kept in a journal."""

    COMPACT_SLACK = 1000

    def __init__(self, journal: Path, start: Any, lookback: float,
                 legacy: Path | None = None) -> None:
        self.journal = journal
        self.start = start
        self.lookback = lookback
        self.legacy = legacy
        self.checkpoints: list[Checkpoint] = []  # the first one is the low end, once promoted
        self.based = False
        self.seen: dict[str, int] = {}  # digest -> number of the checkpoint that will cover it
        self._lines = 0
        self._warned = False

    # --- what a poll asks ------------------------------------------------------------------

    def low(self) -> Any:
        """The value the query gets as ``:watermark``."""
        return self.checkpoints[0].high if self.based else self.start

    def has(self, row_digest: str) -> bool:
        return row_digest in self.seen

    def remember(self, row_digest: str) -> None:
        """A row's message was accepted: never send it again (fsynced before returning)."""
        number = self.checkpoints[-1].number + 1 if self.checkpoints else 0
        self.seen[row_digest] = number
        self._append({"s": row_digest, "n": number})

    def finish(self, high: Any, xmax: int | None, started: float, xmin: int | None,
               now: float) -> None:
        """A poll read the whole window without stopping: record its high value, and move
        the low end up to the newest checkpoint that is safe (see the module docstring).
        ``started`` and ``xmin`` are the time and PostgreSQL snapshot before its read."""
        last = self.checkpoints[-1] if self.checkpoints else None
        if high is not None and (last is None or canonical(last.high) != canonical(high)):
            number = last.number + 1 if last else 0
            self.checkpoints.append(Checkpoint(number, now, high, xmax))
            self._append({"c": [number, now, high, xmax]})
        safe = None
        for index, checkpoint in enumerate(self.checkpoints):
            if checkpoint.number > (last.number if last else -1):
                break  # written by this poll: no complete poll has read after it yet
            if checkpoint.at > started - self.lookback:
                break
            if checkpoint.xmax is not None and xmin is not None and xmin < checkpoint.xmax:
                break
            safe = index
        if safe is not None and (not self.based or safe > 0):
            self._promote(safe)
        self._warn_if_held(now)
        if self._lines > 2 * (len(self.seen) + len(self.checkpoints)) + self.COMPACT_SLACK:
            self._compact()

    HELD_WARNING = 600.0
    """A window held open longer than this (s, and ten look-backs) is logged: each poll
    re-reads all of it (on PostgreSQL: a transaction left open somewhere in the cluster)."""

    def _warn_if_held(self, now: float) -> None:
        waiting = self.checkpoints[1:] if self.based else self.checkpoints
        if not waiting:
            self._warned = False
            return
        held = now - waiting[0].at
        if held > max(self.HELD_WARNING, 10 * self.lookback) and not self._warned:
            self._warned = True
            log.warning("database watermark window held open: every poll re-reads it; a "
                        "transaction left open on the database?", seconds=round(held))

    def _promote(self, index: int) -> None:
        base = self.checkpoints[index]
        del self.checkpoints[:index]
        self.based = True
        self.seen = {d: n for d, n in self.seen.items() if n >= base.number}
        self._append({"b": base.number})

    # --- the journal ------------------------------------------------------------------------

    def load(self) -> None:
        self.checkpoints, self.seen, self.based, self._lines = [], {}, False, 0
        try:
            lines = self.journal.read_text().splitlines()
        except FileNotFoundError:
            self._load_legacy()
            return
        base: int | None = None
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut by a crash: its row was not yet accepted
            self._lines += 1
            if "s" in entry:
                self.seen[entry["s"]] = int(entry["n"])
            elif "c" in entry:
                number, at, high, xmax = entry["c"]
                self.checkpoints.append(Checkpoint(int(number), float(at), high, xmax))
            elif "b" in entry:
                base = int(entry["b"])
        if base is not None:
            self.checkpoints = [c for c in self.checkpoints if c.number >= base]
            self.based = bool(self.checkpoints) and self.checkpoints[0].number == base
            self.seen = {d: n for d, n in self.seen.items() if n >= base}

    def _load_legacy(self) -> None:
        """The single-value file of earlier versions: its value becomes the low end."""
        if self.legacy is None:
            return
        try:
            value = json.loads(self.legacy.read_text())["watermark"]
        except (OSError, ValueError, KeyError):
            return
        self.checkpoints = [Checkpoint(0, 0.0, value, None)]
        self.based = True
        self._compact()

    def _append(self, entry: dict[str, Any]) -> None:
        append_durably(self.journal, (json.dumps(entry, default=str, separators=(",", ":"))
                                      + "\n").encode("utf-8"))
        self._lines += 1

    def _compact(self) -> None:
        private_folder(self.journal.parent)
        entries: list[dict[str, Any]] = [
            {"c": [c.number, c.at, c.high, c.xmax]} for c in self.checkpoints]
        if self.based and self.checkpoints:
            entries.append({"b": self.checkpoints[0].number})
        entries += [{"s": d, "n": n} for d, n in self.seen.items()]
        replace_durably(self.journal, "".join(
            json.dumps(entry, default=str, separators=(",", ":")) + "\n" for entry in entries
        ).encode("utf-8"))
        self._lines = len(entries)
