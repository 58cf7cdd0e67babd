"""Fixtures shared across the suite: store URLs for SQLite and the local PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

# Pure Python even where the optional mypyc build is installed (tests patch module functions, which
# compiled modules refuse); CONDUIT_FHIR_PURE=0 runs them against the build. Set before any
# conduit.fhir import (conduit/fhir/compiled.py).
os.environ.setdefault("CONDUIT_FHIR_PURE", "1")

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'conduit.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the local PostgreSQL, dropped afterwards (no mock stands in)."""
    name = f"conduit_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Each store test runs against SQLite and against the real local PostgreSQL."""
    return str(request.getfixturevalue(f"{request.param}_url"))
