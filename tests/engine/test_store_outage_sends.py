"""A send that succeeded while the store cannot record it is never sent again (issue 17, item
1): with the store full (SQLite on a small tmpfs) or read-only (PostgreSQL
``default_transaction_read_only``), the drills sent one message 87 times in 100 s. Now the
outcome is remembered (in memory, and in a local journal that survives a restart), its recording
retried without sending, and the destination pauses, showing itself as an open breaker."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import POSTGRES_ADMIN_URL
from tests.rabbit import RABBIT_URL, delete_channel_queues, unique_channel
from tests.support import (
    MllpReceiver,
    free_port,
    mllp_exchange,
    msa,
    running_engine,
    wait_for,
    write_channel,
)

ADT = ("MSH|^~\\&|REG|HOSP|ADT|HOSP|20260101120000||ADT^A01^ADT_A01|{id}|P|2.5\r"
       "PID|1||PAT123^^^HOSP^MR||TESTPATIENT^ALPHA||19800101|F\r")
HOLD = 4.0  # seconds the store stays unable to record (the drill's storm: ~4 sends a second)


def channel(receiver_port: int, name: str = "feed") -> dict[str, Any]:
    return {"name": name,
            "source": {"type": "mllp", "host": "127.0.0.1", "port": free_port()},
            "destinations": [{"name": "ehr", "type": "mllp", "host": "127.0.0.1",
                              "port": receiver_port, "retry": {"initial": "100ms"}}]}


class Outage:
    """Breaks the store when the receiver gets the first message (after it was stored and
    before its delivery is recorded): the receiver answers AA only once it is broken."""

    def __init__(self, breaks: Callable[[], None]) -> None:
        self.breaks = breaks
        self.broken = threading.Event()

    def answer(self, message: bytes) -> str:
        if not self.broken.is_set():
            self.breaks()
            self.broken.set()
        return "AA"


@contextlib.asynccontextmanager
async def engine_on(config: dict[str, Any], tmp_path: Path, store_url: str,
                    bus_url: str | None) -> AsyncIterator[Any]:
    if bus_url is None:
        async with running_engine([config], tmp_path, store_url) as engine:
            yield engine
        return
    from conduit.engine.engine import Engine
    from conduit.engine.loader import load_channels
    from conduit.engine.settings import Settings

    path = write_channel(tmp_path / "channels", config)
    engine = Engine(Settings(data_dir=tmp_path / "data", store_url=store_url, bus_url=bus_url,
                             dashboard={"enabled": False}), load_channels([path]))
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


async def drill(tmp_path: Path, store_url: str, breaks: Callable[[], None],
                mends: Callable[[], None], bus_url: str | None = None) -> None:
    outage = Outage(breaks)
    name = unique_channel("outage") if bus_url else "feed"
    with MllpReceiver(outage.answer) as receiver:
        async with engine_on(channel(receiver.port, name), tmp_path, store_url,
                             bus_url) as engine:
            port = engine.runtimes[name].source.port
            [ack] = await asyncio.to_thread(mllp_exchange, port, [ADT.format(id="ONCE").encode()])
            assert msa(ack)[1] == "AA"
            await wait_for(outage.broken.is_set)
            await asyncio.sleep(HOLD)
            assert receiver.control_ids() == ["ONCE"]  # sent once, however long the outage
            runtime = engine.runtimes[name]
            assert runtime.breaker_state("ehr") == "open"  # paused, and seen as such
            state = runtime.destination_state()["ehr"]
            assert state["paused"] is True and "record" in str(state["paused_reason"])
            await asyncio.to_thread(mends)
            await wait_for(lambda: [r.status for r in engine.store.search(channel=name)]
                           == ["SENT"], timeout=15)
            await wait_for(lambda: runtime.breaker_state("ehr") != "open")
            [ack] = await asyncio.to_thread(mllp_exchange, port, [ADT.format(id="NEXT").encode()])
            await wait_for(lambda: receiver.control_ids() == ["ONCE", "NEXT"])
            await asyncio.sleep(0.3)
            assert receiver.control_ids() == ["ONCE", "NEXT"]


@contextlib.contextmanager
def small_tmpfs(folder: Path, size: str = "2m") -> Iterator[Path]:
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                              str(folder)], capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): "
                    + mounted.stderr.decode(errors="replace").strip())
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_sqlite_store_on_a_full_disk_sends_once(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk") as disk:
        filler = disk / "filler"

        def fill() -> None:
            with contextlib.suppress(OSError), open(filler, "wb") as handle:
                while True:
                    handle.write(b"\0" * 4096)
                    handle.flush()

        def free() -> None:
            filler.unlink()

        asyncio.run(drill(tmp_path, f"sqlite:///{disk / 'conduit.db'}", fill, free))


@pytest.fixture
def own_database() -> Iterator[tuple[str, str]]:
    name = f"conduit_ro_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield name, f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def read_only(name: str, on: bool) -> None:
    """``default_transaction_read_only`` for the database, and its sessions started again."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only'
                                    f" = {'on' if on else 'off'}"))
            connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = :name AND pid <> pg_backend_pid()"),
                               {"name": name})
    finally:
        admin.dispose()


@pytest.mark.parametrize("bus", ["embedded", "rabbitmq"])
def test_postgres_store_read_only_sends_once(tmp_path: Path, own_database: tuple[str, str],
                                             bus: str) -> None:
    """With RabbitMQ the envelope stays unacknowledged while the record is retried."""
    name, url = own_database
    bus_url = RABBIT_URL if bus == "rabbitmq" else None
    try:
        asyncio.run(drill(tmp_path, url, lambda: read_only(name, True),
                          lambda: read_only(name, False), bus_url))
    finally:
        if bus_url:
            for channel_name in {p.stem for p in (tmp_path / "channels").glob("*.yaml")}:
                delete_channel_queues(channel_name)


def test_a_restart_while_the_store_is_away_does_not_send_again(
        tmp_path: Path, own_database: tuple[str, str]) -> None:
    """The engine stops (as in a crash) holding a sent, unrecorded outcome; the next run finds
    it in the journal and records it instead of sending."""
    name, url = own_database
    outage = Outage(lambda: read_only(name, True))
    journal = tmp_path / "data" / "outcomes" / "feed" / "ehr.jsonl"

    async def first_run(receiver: MllpReceiver, config: dict[str, Any]) -> None:
        async with running_engine([config], tmp_path, url) as engine:
            port = engine.runtimes["feed"].source.port
            await asyncio.to_thread(mllp_exchange, port, [ADT.format(id="ONCE").encode()])
            await wait_for(lambda: engine.runtimes["feed"].breaker_state("ehr") == "open")
            await wait_for(journal.exists)  # written in a thread right after the pause
            assert journal.stat().st_mode & 0o777 == 0o600

    async def second_run(receiver: MllpReceiver, config: dict[str, Any]) -> None:
        async with running_engine([config], tmp_path, url) as engine:
            await wait_for(lambda: [r.status for r in engine.store.search(channel="feed")]
                           == ["SENT"], timeout=15)
            await asyncio.sleep(0.5)
            assert receiver.control_ids() == ["ONCE"]
            assert not journal.exists()

    with MllpReceiver(outage.answer) as receiver:
        config = channel(receiver.port)
        asyncio.run(first_run(receiver, config))
        assert receiver.control_ids() == ["ONCE"]
        read_only(name, False)
        asyncio.run(second_run(receiver, config))


def test_kill_9_while_the_store_is_read_only_sends_once(
        tmp_path: Path, own_database: tuple[str, str]) -> None:
    """``conduit run`` killed (-9) while it holds a sent, unrecorded outcome: the restarted
    engine records it from the journal and does not send it again."""
    from sqlalchemy import create_engine as sa_engine

    from tests.support import EngineProcess, wait_until

    name, url = own_database
    outage = Outage(lambda: read_only(name, True))
    journal = tmp_path / "data" / "outcomes" / "feed" / "ehr.jsonl"

    def status() -> list[str]:
        engine = sa_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        try:
            with engine.connect() as connection:
                return [row[0] for row in connection.execute(text(
                    "SELECT status FROM deliveries WHERE destination = 'ehr'"))]
        except Exception:
            return []
        finally:
            engine.dispose()

    with MllpReceiver(outage.answer) as receiver:
        config = channel(receiver.port)
        write_channel(tmp_path / "channels", config)
        env = {"CONDUIT_STORE_URL": url}
        first = EngineProcess(tmp_path / "channels", tmp_path / "data", env=env).start()
        try:
            mllp_exchange(config["source"]["port"], [ADT.format(id="ONCE").encode()])
            wait_until(journal.exists)
            wait_until(lambda: "destination paused" in "".join(first.output))
        finally:
            first.kill()
        assert receiver.control_ids() == ["ONCE"]
        read_only(name, False)
        second = EngineProcess(tmp_path / "channels", tmp_path / "data", env=env).start()
        try:
            wait_until(lambda: status() == ["SENT"], timeout=20)
            wait_until(lambda: not journal.exists())
        finally:
            second.stop()
        assert receiver.control_ids() == ["ONCE"]
