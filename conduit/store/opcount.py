"""What this process's store writes cost the database, counted (``/metrics``, ``conduit bench``).

The hot path's writes (``writes``) count each statement they execute and each row it wrote, and
the group commits (``batch``, ``groups``) each commit: plain integer adds, no lock and no system
call (every group runs one at a time, on the loop or in the one writer thread). The writing
process (``process``) counts in its own copy and hands what it counted back with each answer, so
this process's totals include its work. Reads and writes made outside the group commits (the
dashboard's, the jobs') are not counted here.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass


@dataclass(slots=True)
class StoreOperations:
    statements: int = 0
    """Statements executed (an ``executemany`` is one, as it is one call of the driver)."""
    rows: int = 0
    """Rows inserted, updated or deleted by them."""
    commits: int = 0
    """Transactions committed (with ``synchronous=FULL`` on SQLite, one fsync of the WAL each)."""

    def take(self) -> tuple[int, int, int]:
        """What was counted since the last ``take``, and start again from zero."""
        counted = astuple(self)
        self.statements = self.rows = self.commits = 0
        return counted

    def add(self, counted: tuple[int, int, int]) -> None:
        self.statements += counted[0]
        self.rows += counted[1]
        self.commits += counted[2]


#: This process's counts.
COUNTS = StoreOperations()
