"""The bench's PostgreSQL profile (``pg_stat_statements``): only where the server preloads it."""

from __future__ import annotations

from conduit.bench import pgstatements
from conduit.bench.pgstatements import Statement


def test_a_server_without_the_extension_preloaded_gives_no_profile(postgres_url: str) -> None:
    # the suite's server does not preload it (that needs a restart): nothing is created there
    assert pgstatements.start(postgres_url) is False


def test_the_profile_is_per_message() -> None:
    insert = Statement("INSERT INTO deliveries (message_id, destination) VALUES ($1, $2)",
                       calls=10_000, rows=10_000, total_ms=457.0, share=0.4)
    figures = pgstatements.per_message(insert, 5000)
    assert figures == {"query": insert.query, "calls_per_message": 2.0,
                       "rows_per_message": 2.0, "us_per_call": 45.7, "share": 0.4}
    header, line = pgstatements.lines([figures], width=30)
    assert header.split() == ["calls/msg", "rows/msg", "us/call", "time", "statement"]
    assert line.split()[:4] == ["2.000", "2.000", "45.7", "40%"]
    assert line.endswith("  INSERT INTO deliveries (mes...")  # cut to its width
