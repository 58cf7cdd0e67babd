"""The page-time measure (``tests/ops/measure_pages.py``, figures in the README) still runs on
PostgreSQL: a small store filled the way the million-message one is, every page answered."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import create_engine, text

from tests.ops.measure_pages import PAGES, measure, prepare


def test_measure_pages_fills_a_postgresql_store_and_times_every_page(
        postgres_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    url = postgres_url.replace("postgresql://", "postgresql+psycopg://")
    newest_error = prepare(url, 2000)
    engine = create_engine(url)
    with engine.connect() as connection:
        counts = dict(connection.execute(text(
            "SELECT status, count(*) FROM messages GROUP BY status")).all())
        fields = connection.execute(text("SELECT count(*) FROM search_fields")).scalar()
        deliveries = connection.execute(text("SELECT count(*) FROM deliveries")).scalar()
        mrn = connection.execute(text(
            "SELECT count(*) FROM search_fields s JOIN messages m ON m.id = s.message_id"
            " WHERE s.name = 'MRN' AND s.value = m.patient_id")).scalar()
    engine.dispose()
    assert sum(counts.values()) == 2000 and {"SENT", "ERROR", "QUEUED"} <= set(counts)
    assert fields == 4 * 2000 and mrn == 2000
    assert deliveries == 2000 - counts.get("FILTERED", 0)

    results = asyncio.run(measure(url, newest_error, 2000, repeat=1, settle=0))
    assert list(results) == PAGES and all(len(times) == 1 for times in results.values())
    printed = capsys.readouterr().out
    assert f"/messages/{newest_error} " in printed and printed.count(" median ") == len(PAGES)
