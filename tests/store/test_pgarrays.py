"""Columns written as PostgreSQL binary arrays (``store.pgarrays``) read back as they were, on
the real local PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest

from conduit.store import pgarrays

NOW = datetime.now(UTC)


@pytest.mark.parametrize(("column", "expected"), [
    (pgarrays.Bigints([1, -(2 ** 63), 2 ** 63 - 1]), None),
    (pgarrays.Bigints([None, 7, None]), None),
    (pgarrays.Integers([0, -(2 ** 31), 2 ** 31 - 1, None]), None),
    (pgarrays.Smallints([0, 1, -32768, 32767, None]), None),
    (pgarrays.Texts(['a "quoted", {braced} \\ text', "", "NULL", "é ü 汉", None]), None),
    (pgarrays.Texts([None, None]), None),
    (pgarrays.Byteas([bytes(range(256)), b"", None, b"\x00"]), None),
    (pgarrays.Timestamptzs([NOW, None, datetime(1970, 1, 1, tzinfo=UTC)]), None),
    (pgarrays.Timestamptzs([NOW.astimezone(timezone(timedelta(hours=-5)))]), [NOW]),
    (pgarrays.Timestamptzs([datetime(2026, 1, 2, 3, 4, 5, 6), None]),  # naive: UTC
     [datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), None]),
    (pgarrays.Texts([]), None),
], ids=lambda value: type(value).__name__ if isinstance(value, pgarrays.Column) else "")
def test_a_column_reads_back_as_written(postgres_url: str, column: pgarrays.Column,
                                        expected: list[object] | None) -> None:
    with psycopg.connect(postgres_url) as connection:
        (value,) = connection.execute("SELECT %b", [column]).fetchone()  # type: ignore[misc]
    assert value == (list(column) if expected is None else expected)
