"""PostgreSQL's own profile of the measured window (``pg_stat_statements``), when it is loaded.

The extension needs ``shared_preload_libraries = 'pg_stat_statements'`` (a server restart), so
the bench only uses it where it already is: it is created in the bench's fresh database, reset as
the window opens and read as it closes (statements of every database are counted, so a server of
one's own gives a clean profile: ``pg_stat_statements.track = all`` counts the statements run
inside functions too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from conduit.store.connect import make_engine

NAME = "conduit-bench"


@dataclass(frozen=True, slots=True)
class Statement:
    query: str
    calls: int
    rows: int
    total_ms: float
    share: float  # of all statements' time in the window


def start(store_url: str) -> bool:
    """Reset the server's statement counts; False when ``pg_stat_statements`` is not loaded."""
    engine = make_engine(store_url, name=NAME)
    try:
        with engine.connect() as connection:
            loaded = connection.execute(text(
                "SELECT setting LIKE '%pg_stat_statements%' FROM pg_settings "
                "WHERE name = 'shared_preload_libraries'")).scalar()
            if not loaded:
                return False
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
            connection.execute(text("SELECT pg_stat_statements_reset()"))
            connection.commit()
            return True
    finally:
        engine.dispose()


def read(store_url: str, limit: int = 12) -> list[Statement]:
    """The statements of the window, most total time first (the bench's own queries left out)."""
    engine = make_engine(store_url, name=NAME)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT query, calls, rows, total_exec_time, "
                "total_exec_time / nullif(sum(total_exec_time) OVER (), 0) FROM pg_stat_statements "
                "WHERE query NOT LIKE '%pg_stat_statements%' AND query NOT LIKE '%pg_settings%' "
                "ORDER BY total_exec_time DESC LIMIT :limit"), {"limit": limit}).all()
    finally:
        engine.dispose()
    return [Statement(" ".join(str(query).split()), int(calls), int(rows), float(total),
                      float(share or 0)) for query, calls, rows, total, share in rows]


def per_message(statement: Statement, messages: int) -> dict[str, Any]:
    """One statement's figures for the bench's JSON: calls and rows per message delivered, time
    per call, its share of all statements' time in the window."""
    return {"query": statement.query,
            "calls_per_message": round(statement.calls / messages, 4),
            "rows_per_message": round(statement.rows / messages, 4),
            "us_per_call": round(statement.total_ms * 1000 / max(statement.calls, 1), 1),
            "share": round(statement.share, 4)}


def lines(statements: list[dict[str, Any]], width: int = 90) -> list[str]:
    """:func:`per_message` figures as a table, one line per statement."""
    out = [f"{'calls/msg':>9} {'rows/msg':>8} {'us/call':>8} {'time':>5}  statement"]
    for statement in statements:
        query = statement["query"]
        if len(query) > width:
            query = query[:width - 3] + "..."
        out.append(f"{statement['calls_per_message']:9.3f} {statement['rows_per_message']:8.3f} "
                   f"{statement['us_per_call']:8.1f} {statement['share']:5.0%}  {query}")
    return out
