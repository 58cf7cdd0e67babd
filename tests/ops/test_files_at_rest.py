"""Files at rest are owner-only whatever the umask: the data directory 0700; the SQLite store,
its WAL and SHM, the dashboard's secret and the file destination's output 0600."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from tests.ops.helpers import adt, dashboard, file_channel, run
from tests.support import mllp_exchange, source_port, wait_for


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_store_secret_and_exports_are_owner_only(tmp_path: Path, umask: int) -> None:
    data = tmp_path / "data"  # made by the engine (running_engine's data_dir)

    async def scenario() -> None:
        async with dashboard(tmp_path, channels=[file_channel(tmp_path)]) as engine:
            await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"), [adt("R1")])
            await wait_for(lambda: engine.store.counts().get("adt", {}).get("SENT") == 1)
            modes = {path.name: _mode(path) for path in data.iterdir() if path.is_file()}
            assert {"conduit.db", "conduit.db-wal", "conduit.db-shm",
                    "dashboard.secret"} <= set(modes), modes
            assert {name: mode for name, mode in modes.items() if mode != 0o600} == {}
            assert _mode(data) == 0o700
            assert _mode(tmp_path / "out" / "R1.hl7") == 0o600

    before = os.umask(umask)
    try:
        run(scenario)
    finally:
        os.umask(before)
