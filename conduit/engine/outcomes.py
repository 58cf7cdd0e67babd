"""Outcomes of sends that the store has not recorded yet: never a second send for them.

A send that succeeded (or failed for good) is recorded in the store; the bus envelope is let go
only after that. While the store cannot take the record (disk full, read-only, down), letting
the bus redeliver the envelope would run the send again: the failure drills sent one message 87
times in 100 s. So the delivery worker holds the outcome here until the store has it, asks here
before every send, and retries the record, not the send.

Held in memory, and, from the first failed attempt to record it, in a small journal file under
the data folder too (append-only, fsynced, owner-only), so that a restart while the store is
still away does not send it again either: at most one send per message and crash. The journal
is read back when the worker starts and removed once every outcome in it is recorded. It is
written only when the store fails, so the hot path pays nothing for it. When the journal cannot
be written either (the same full disk), memory is all there is, and the log says so.
"""

from __future__ import annotations

import base64
import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import structlog

from conduit.core.private import append_durably

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str
    """``SENT`` or ``ERROR`` (given up)."""
    attempts: int
    response: bytes | None = None
    error: str | None = None


class Outcomes:
    """One destination's outcomes waiting for the store, by message id."""

    def __init__(self, journal: Path | None) -> None:
        self.journal_path = journal
        self._held: dict[int, Outcome] = {}
        self._journalled: set[int] = set()

    def __len__(self) -> int:
        return len(self._held)

    def get(self, message_id: int) -> Outcome | None:
        return self._held.get(message_id)

    def hold(self, message_id: int, outcome: Outcome) -> None:
        self._held[message_id] = outcome

    def journal(self, message_id: int) -> bool:
        """Put a held outcome in the journal (fsynced); False when that cannot be done."""
        outcome = self._held.get(message_id)
        if outcome is None or message_id in self._journalled:
            return outcome is not None
        if self.journal_path is None:
            return False
        entry = {"id": message_id, "status": outcome.status, "attempts": outcome.attempts,
                 "error": outcome.error,
                 "response": (base64.b64encode(outcome.response).decode("ascii")
                              if outcome.response is not None else None)}
        try:
            self._append(entry)
        except OSError as exc:
            log.error("cannot journal an unrecorded outcome: held in memory only",
                      message_id=message_id, error=f"{type(exc).__name__}: {exc.strerror}")
            return False
        self._journalled.add(message_id)
        return True

    def release(self, message_id: int) -> None:
        """The store has the outcome: forget it (and strike it from the journal)."""
        self._held.pop(message_id, None)
        if message_id not in self._journalled:
            return
        self._journalled.discard(message_id)
        assert self.journal_path is not None
        try:
            if self._journalled:
                self._append({"done": message_id})
            else:
                self.journal_path.unlink(missing_ok=True)
        except OSError as exc:  # read back later, the record is simply made again
            log.warning("cannot update the outcome journal", error=exc.strerror)

    def load(self) -> int:
        """Outcomes a previous run journalled and never saw recorded; how many."""
        if self.journal_path is None:
            return 0
        try:
            lines = self.journal_path.read_text().splitlines()
        except FileNotFoundError:
            return 0
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut by a crash: that outcome was never journalled
            if "done" in entry:
                self._held.pop(int(entry["done"]), None)
                self._journalled.discard(int(entry["done"]))
                continue
            response = entry.get("response")
            self._held[int(entry["id"])] = Outcome(
                entry["status"], int(entry["attempts"]),
                base64.b64decode(response) if response is not None else None, entry.get("error"))
            self._journalled.add(int(entry["id"]))
        if not self._journalled:
            with contextlib.suppress(OSError):
                self.journal_path.unlink()
        return len(self._journalled)

    def _append(self, entry: dict[str, object]) -> None:
        assert self.journal_path is not None
        append_durably(self.journal_path,
                       (json.dumps(entry, separators=(",", ":")) + "\n").encode("utf-8"))
