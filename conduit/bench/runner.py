"""Runs one benchmark: baseline(s) first, then the engine, on the same machine in the same run.

Every process is real: the downstream receiver and the raw-echo baseline are subprocesses, the
engine is ``conduit run`` as a subprocess with its real store and bus; this process only generates
load and reads figures (CPU seconds and peak RSS from /proc, store size from disk or PostgreSQL).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from conduit.bench import pgstatements
from conduit.bench.loadgen import LoadResult, drive

CHANNEL = "bench"


@dataclass
class Options:
    messages: int = 20000
    connections: int = 16
    bus: str = "embedded"          # embedded | amqp
    store: str = "sqlite"          # sqlite | postgresql
    fhir: bool = False
    rate: float | None = None
    warmup: int = 1000
    profile: str | None = None     # cProfile stats file for the engine process
    out_dir: str | None = None     # where the file destination writes (default: archive_root())
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672//"
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432/test"
    ceiling_cores: int = 2         # cores given to RabbitMQ and to PostgreSQL for the ceiling
    dest_connections: int = 4      # the MLLP destination's connections to the receiver


class Receiver:
    """``python -m conduit.bench.receiver`` as a subprocess."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "conduit.bench.receiver", "0"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)
        self.port = int(self._line().split()[1])

    def _line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("benchmark receiver died")
        return line

    def wait_for(self, count: int) -> float:
        """Block until ``count`` messages have arrived; the unix time they had."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"expect {count}\n")
        self.process.stdin.flush()
        return float(self._line().split()[2])

    def count(self) -> tuple[int, float]:
        """Messages arrived so far, and the unix time it had them."""
        assert self.process.stdin is not None
        self.process.stdin.write("count\n")
        self.process.stdin.flush()
        words = self._line().split()
        return int(words[1]), float(words[2])

    def reset(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("reset\n")
        self.process.stdin.flush()
        self._line()

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.terminate()
        self.process.wait(10)
        if self.process.stdout:
            self.process.stdout.close()


def _stat(pid: int) -> tuple[str, list[str]]:
    """A process's command name, and the fields of /proc/PID/stat after it."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.index("(") + 1:text.rindex(")")], text.rsplit(")", 1)[1].split()


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process descended from it (the engine's store writer and full-text
    indexer, and the fork server they come from)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                children.setdefault(int(_stat(int(entry.name))[1][1]), []).append(
                    int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


#: The bench's own store connections (``pg_stat_activity.application_name`` on PostgreSQL).
BENCH_NAME = "conduit-bench"
#: The engine's own processes among ``cpu_by_process``'s roles.
ENGINE_ROLES = ("engine", "store writer", "full-text indexer")


def services_used(options: Options, roles: dict[str, float]) -> dict[str, float]:
    """``roles`` with RabbitMQ's and PostgreSQL's CPU zeroed when the mode does not use them.

    The embedded bus and SQLite use neither, so what they burn on this machine meanwhile is
    someone else's (another bench, a test run), not the cost of these messages; counted, it
    also went negative when a PostgreSQL backend of theirs exited inside the window."""
    out = dict(roles)
    if options.bus != "amqp":
        out["RabbitMQ"] = 0.0
    if options.store != "postgresql":
        for role in out:
            if role.startswith("PostgreSQL"):
                out[role] = 0.0
    return out


def pg_backends(store_url: str | None) -> dict[int, str]:
    """PostgreSQL: the store's server processes, by the name their connection gave."""
    if not store_url:
        return {}
    from sqlalchemy import text

    from conduit.store.connect import make_engine

    engine = make_engine(store_url, name=BENCH_NAME)
    try:
        with engine.connect() as connection:
            return {int(pid): str(name) for pid, name in connection.execute(text(
                "SELECT pid, application_name FROM pg_stat_activity "
                "WHERE datname = current_database()"))}
    finally:
        engine.dispose()


def cpu_by_process(engine_pid: int, receiver_pid: int,
                   backends: dict[int, str] | None = None) -> dict[str, float]:
    """CPU seconds so far of everything that shares the machine in a run, by role: the engine's
    processes (main, store writer, full-text indexer: the helpers name themselves), the
    receiver, the load generator (this process), RabbitMQ and PostgreSQL (all their processes,
    when they run here; the store writer's and the indexer's server processes apart, found in
    ``backends``)."""
    from conduit.store.connect import INDEXER_NAME, WRITER_NAME

    by_connection = {WRITER_NAME: "PostgreSQL for the store writer",
                     INDEXER_NAME: "PostgreSQL for the indexer"}

    engine_tree = set(process_tree(engine_pid))
    roles = {**dict.fromkeys(ENGINE_ROLES, 0), "receiver": 0, "RabbitMQ": 0, "PostgreSQL": 0,
             **dict.fromkeys(by_connection.values(), 0)}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            name, fields = _stat(pid)
            ticks = int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
        if pid in engine_tree:
            role = {WRITER_NAME: "store writer", INDEXER_NAME: "full-text indexer"}.get(
                name, "engine")
        elif pid == receiver_pid:
            role = "receiver"
        elif name == "beam.smp":
            role = "RabbitMQ"
        elif name == "postgres":
            role = by_connection.get((backends or {}).get(pid, ""), "PostgreSQL")
        else:
            continue
        roles[role] += ticks
    seconds = {role: ticks / os.sysconf("SC_CLK_TCK") for role, ticks in roles.items()}
    times = os.times()
    seconds["load generator"] = times.user + times.system
    return seconds


def peak_rss_mb(pid: int) -> float:
    """The largest peak RSS among a process and its descendants."""
    peaks = []
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
    return max(peaks, default=float("nan"))


#: ``/metrics`` counters read before and after the window (``ops.opcount``), by the name the
#: bench reports them under.
OPERATIONS = {("conduit_bus_operations_total", "publish"): "publish",
              ("conduit_bus_operations_total", "deliver"): "deliver",
              ("conduit_bus_operations_total", "ack"): "ack",
              ("conduit_bus_operations_total", "confirm"): "confirm",
              ("conduit_store_operations_total", "statement"): "store statements",
              ("conduit_store_operations_total", "row"): "store rows",
              ("conduit_store_operations_total", "commit"): "store commits"}
#: PostgreSQL keeps a backend's statistics for up to this long before publishing them when the
#: backend is idle (PGSTAT_IDLE_INTERVAL, 10 s, plus a margin): the bench waits it out before
#: its first reading, so that the warm-up's are not counted in the window.
PG_STATS_SETTLE = 10.5


def scrape_operations(port: int) -> dict[str, float]:
    """The engine's bus and store operations so far, from its ``/metrics`` (served without
    login to this machine)."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    counted = dict.fromkeys(OPERATIONS.values(), 0.0)
    for line in text.splitlines():
        name, _, rest = line.partition('{operation="')
        key = OPERATIONS.get((name, rest.split('"', 1)[0]))
        if key is not None:
            counted[key] = float(line.rsplit(" ", 1)[1])
    return counted


def pg_server_counts(store_url: str) -> dict[str, float]:
    """What PostgreSQL itself counted: the store database's commits and rows written
    (``pg_stat_database``: everything on it, the engine's jobs and reads included) and the WAL's
    fsyncs and writes (``pg_stat_wal``, PostgreSQL 14+: the whole cluster's)."""
    from sqlalchemy import text

    from conduit.store.connect import make_engine

    engine = make_engine(store_url, name=BENCH_NAME)
    try:
        with engine.connect() as connection:
            commits, rows = connection.execute(text(
                "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted "
                "FROM pg_stat_database WHERE datname = current_database()")).one()
            counts = {"server commits": float(commits), "server rows": float(rows)}
            if (connection.dialect.server_version_info or (0,)) >= (14,):
                syncs, writes = connection.execute(text(
                    "SELECT wal_sync, wal_write FROM pg_stat_wal")).one()
                counts |= {"WAL fsyncs": float(syncs), "WAL writes": float(writes)}
            return counts
    finally:
        engine.dispose()


def wait_backends_gone(store_url: str, timeout: float = 10.0) -> None:
    """Block until no other connection to the store's database is left (a backend publishes
    its statistics as it exits)."""
    from sqlalchemy import text

    from conduit.store.connect import make_engine

    engine = make_engine(store_url, name=BENCH_NAME)
    deadline = time.monotonic() + timeout
    try:
        with engine.connect() as connection:
            while time.monotonic() < deadline:
                others = connection.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()")).scalar_one()
                connection.rollback()
                if not others:
                    return
                time.sleep(0.05)
    finally:
        engine.dispose()


def per_message(before: dict[str, float], after: dict[str, float],
                messages: int) -> dict[str, float]:
    """Each counter's growth over the window, per message delivered."""
    return {key: (after[key] - before[key]) / messages for key in after if key in before}


def ops_line(ops: dict[str, float], store: str) -> str:
    """``ops/msg: publish 2.00  deliver 2.00 ...``: what one message cost the bus and the store.
    Fsyncs: PostgreSQL counts its WAL's; SQLite (WAL, ``synchronous=FULL``) fsyncs the WAL once
    per commit, so there they are the commits (checkpoints add a few, not counted)."""
    fsyncs = ops.get("WAL fsyncs") if store == "postgresql" else ops["store commits"]
    line = (f"ops/msg: publish {ops['publish']:.2f}  deliver {ops['deliver']:.2f}  ack "
            f"{ops['ack']:.2f}  confirm {ops['confirm']:.2f}  store stmts "
            f"{ops['store statements']:.2f}  rows {ops['store rows']:.2f}  commits "
            f"{ops['store commits']:.3f}  fsyncs ")
    if store != "postgresql":
        return line + f"{fsyncs:.3f} (SQLite WAL with synchronous=FULL: one per commit)"
    line += "n/a" if fsyncs is None else f"{fsyncs:.3f}"
    return line + (f"; PostgreSQL's own count: commits {ops['server commits']:.3f}  rows "
                   f"{ops['server rows']:.2f}" + (f"  WAL writes {ops['WAL writes']:.3f}"
                                                  if "WAL writes" in ops else "")
                   + " (the database's every transaction, jobs and reads included; WAL: the "
                     "whole cluster's)")


def cluster_ceiling(options: Options, by_process: dict[str, float]) -> dict[str, float] | None:
    """What the shared services allow a cluster of engine hosts, at the CPU per message they
    just took: each service's messages/s per core, and the rate at which ``ceiling_cores``
    cores each saturate the first of them. None with neither (embedded bus and SQLite)."""
    shared = {}
    if options.bus == "amqp":
        shared["rabbitmq"] = by_process.get("RabbitMQ", 0.0) / 1000
    if options.store == "postgresql":
        shared["postgresql"] = sum(seconds for role, seconds in by_process.items()
                                   if role.startswith("PostgreSQL")) / 1000
    if not shared:
        return None
    # a service whose CPU did not move in the window (10 ms ticks, a short run) sets no limit
    ceiling = {f"{service}_per_core": 1 / seconds for service, seconds in shared.items()
               if seconds}
    result = {**ceiling, "cores": options.ceiling_cores,
              **({"per_s": options.ceiling_cores * min(ceiling.values())} if ceiling else {})}
    # its own connections alone: on a machine shared with other databases' work (other
    # clients, autovacuum elsewhere), a bound on what the rest of PostgreSQL's CPU is worth
    own = sum(by_process.get(role, 0.0) for role in (
        "PostgreSQL for the store writer", "PostgreSQL for the indexer")) / 1000
    if options.store == "postgresql" and own:
        result["postgresql_own_connections_per_core"] = 1 / own
    return result


def ceiling_line(options: Options, ceiling: dict[str, float] | None) -> str:
    if ceiling is None:
        return ("cluster ceiling: none here: the embedded bus and SQLite live in the engine's "
                "process, so engine hosts share no service (--bus amqp --store postgresql "
                "measures one)")
    parts = [f"{name} " + (f"{ceiling[key]:,.0f} msg/s per core" if key in ceiling
                           else "no CPU measured")
             for name, key, mode in (("RabbitMQ", "rabbitmq_per_core", options.bus == "amqp"),
                                     ("PostgreSQL", "postgresql_per_core",
                                      options.store == "postgresql")) if mode]
    if "postgresql_own_connections_per_core" in ceiling:
        parts[-1] += (f" ({ceiling['postgresql_own_connections_per_core']:,.0f} counting only "
                      f"the store's own connections)")
    limit = f"{ceiling['per_s']:,.0f} msg/s" if "per_s" in ceiling else "an unmeasured rate"
    return (f"cluster ceiling: {', '.join(parts)} → with {ceiling['cores']:g} cores each "
            f"(--ceiling-cores), a cluster of engine hosts saturates them at {limit}")


def channel_config(downstream: int, out_dir: Path, port: int, fhir: bool,
                   full_text: bool = False, dest_connections: int = 4) -> dict[str, Any]:
    """The standard channel: MLLP in, filter, set + template, MLLP out (``dest_connections``
    connections) and file out; search fields on and full text off (the defaults) unless
    ``full_text``.

    With ``fhir`` the template step is the HL7 v2 to FHIR R4 conversion (a transaction Bundle)
    and the Bundle goes to the file destination only (an MLLP receiver takes HL7, not JSON);
    delivery is then measured from the store instead of at the receiver."""
    transform: list[dict[str, Any]] = [
        {"set": {"field": "PID-5.1", "value": "{{ msg['PID-5.1'] | upper }}"}},
        {"hl7v2-to-fhir": {"bundle": "transaction"}} if fhir
        else {"template": {"body": "{{ msg.text }}"}},
    ]
    destinations: list[dict[str, Any]] = [
        {"name": "archive", "type": "file", "fsync": False, "path": str(out_dir / "{{ id }}.json")},
    ] if fhir else [
        # a busy feed keeps several connections to its receiver (one message in flight on each)
        {"name": "downstream", "type": "mllp", "host": "127.0.0.1", "port": downstream,
         "connections": dest_connections},
        {"name": "archive", "type": "file", "fsync": False,
         "path": str(out_dir / "{{ msg['MSH-10'] }}.hl7")},
    ]
    return {"name": CHANNEL, "source": {"type": "mllp", "host": "127.0.0.1", "port": port},
            "filter": {"all": [{"field": "MSH-9.1", "equals": "ADT"}]},
            "transform": transform, "destinations": destinations,
            **({"search": {"full_text": True}} if full_text else {})}


def count_sent(store_url: str) -> tuple[int, float]:
    """Messages SENT in the store now, and the unix time it had them."""
    from sqlalchemy import text

    from conduit.store.connect import make_engine

    engine = make_engine(store_url, name=BENCH_NAME)
    try:
        with engine.connect() as connection:
            sent = connection.execute(text(
                "SELECT count(*) FROM messages WHERE status = 'SENT'")).scalar_one()
            return int(sent), time.time()
    finally:
        engine.dispose()


def wait_sent(store_url: str, count: int, timeout: float = 600.0) -> float:
    """Block until the store has ``count`` messages SENT; the unix time it had them."""
    from sqlalchemy import text

    from conduit.store.connect import make_engine

    engine = make_engine(store_url, name=BENCH_NAME)
    deadline = time.monotonic() + timeout
    try:
        with engine.connect() as connection:
            while True:
                sent = connection.execute(text(
                    "SELECT count(*) FROM messages WHERE status = 'SENT'")).scalar_one()
                connection.rollback()  # a fresh snapshot next time
                if sent >= count:
                    return time.time()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {sent} of {count} messages were sent in time")
                time.sleep(0.02)
    finally:
        engine.dispose()


def archive_root() -> Path | None:
    """Where the benchmark's file destination writes by default: tmpfs when there is one.

    Not to flatter the engine: on this project's ext4 VMs, creating a file costs 0.3-1.4 ms of
    kernel time for minutes after a mass delete (the inode allocator skips recently deleted
    inodes), and every benchmark run deletes the 10,000+ files of the last one; figures then fell
    by half from one run to the next. ``--out-dir`` puts the files anywhere else."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else None


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_load(port: int, total: int, connections: int, run: str,
             rate: float | None) -> LoadResult:
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(drive(port, total, connections, run, rate))
    return uvloop.run(drive(port, total, connections, run, rate))


def baseline_echo(options: Options) -> LoadResult:
    """Raw asyncio MLLP echo, same connections, no store and no bus: the floor under us."""
    receiver = Receiver()
    try:
        run_load(receiver.port, options.warmup, options.connections, "W", None)
        return run_load(receiver.port, options.messages, options.connections, "B", options.rate)
    finally:
        receiver.close()


def baseline_amqp(options: Options) -> float:
    """RabbitMQ alone, through the engine's own bus: publish with confirms from as many
    concurrent publishers as there are connections, consume with acks; messages/s."""

    async def measure() -> float:
        from conduit.bus.base import Envelope, QueueSpec
        from conduit.bus.rabbitmq import RabbitBus, wait_connected

        queue = f"conduit.bench-{uuid.uuid4().hex[:8]}.source"
        bus = RabbitBus(options.amqp_url)
        await bus.start()
        if not await asyncio.to_thread(wait_connected, bus, 15):
            raise RuntimeError("RabbitMQ is not reachable for the baseline")
        await bus.declare([QueueSpec(queue)])
        payload = b"x" * 700
        done = asyncio.Event()
        received = 0

        async def consume(_envelope: Envelope) -> None:
            nonlocal received
            received += 1
            if received >= options.messages:
                done.set()

        started = time.perf_counter()
        await bus.subscribe(queue, consume, concurrency=options.connections)
        per_publisher = options.messages // options.connections

        async def publisher(index: int) -> None:
            for n in range(per_publisher):
                await bus.publish(queue, [Envelope(index * per_publisher + n, payload)])

        await asyncio.gather(*(publisher(i) for i in range(options.connections)))
        remainder = options.messages - per_publisher * options.connections
        if remainder:
            await bus.publish(queue, [Envelope(-1, payload)] * remainder)
        await asyncio.wait_for(done.wait(), 120)
        rate = options.messages / (time.perf_counter() - started)
        await bus.close()
        await asyncio.to_thread(_delete_queue, options.amqp_url, queue)
        return rate

    return asyncio.run(measure())


def _delete_queue(url: str, queue: str) -> None:
    import pika

    from conduit.bus.rabbitmq import RabbitBus

    connection = pika.BlockingConnection(pika.URLParameters(RabbitBus(url).url))
    connection.channel().queue_delete(queue)
    connection.close()


def store_bytes(options: Options, data_dir: Path, store_url: str | None) -> tuple[int, int]:
    """The store's size on disk, and the part of it that is the full-text index."""
    from sqlalchemy import text

    from conduit.store.connect import make_engine

    if options.store == "sqlite":
        engine = make_engine(f"sqlite:///{data_dir / 'conduit.db'}", name=BENCH_NAME)
        with engine.connect() as connection:
            # the WAL's size says how long since a checkpoint, not what is stored: fold it in
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            fulltext = connection.execute(text(  # dbstat: bytes per table and index
                "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'message_fts%'")).scalar()
        engine.dispose()
        return sum(p.stat().st_size for p in data_dir.glob("conduit.db*")), int(fulltext or 0)
    assert store_url is not None
    engine = make_engine(store_url, name=BENCH_NAME)
    with engine.connect() as connection:
        size, fulltext = connection.execute(text(
            "select sum(pg_total_relation_size(c.oid)), "
            "sum(pg_total_relation_size(c.oid)) filter (where c.relname = 'message_text') "
            "from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = 'public' and c.relkind = 'r'")).one()
    engine.dispose()
    return int(size or 0), int(fulltext or 0)


def wait_indexed(store_url: str, timeout: float = 120.0) -> None:
    """Block until the full-text index has every message (it runs a second or so behind), so
    that the store's size includes it."""
    from sqlalchemy import text

    from conduit.store.connect import make_engine

    engine = make_engine(store_url, name=BENCH_NAME)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                last = connection.execute(text(
                    "SELECT value FROM store_state WHERE key = 'fulltext.last_id'")).scalar()
                newest = connection.execute(text("SELECT max(id) FROM messages")).scalar()
            if newest is None or (last is not None and int(last) >= newest):
                return
            time.sleep(0.2)
    finally:
        engine.dispose()
    raise RuntimeError("the full-text index did not catch up")


def make_postgres_db(options: Options) -> tuple[str, str]:
    from sqlalchemy import text

    from conduit.store.connect import make_engine

    name = f"conduit_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(options.postgres_url, name=BENCH_NAME).execution_options(
        isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, options.postgres_url.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres_db(options: Options, name: str) -> None:
    from sqlalchemy import text

    from conduit.store.connect import make_engine

    admin = make_engine(options.postgres_url, name=BENCH_NAME).execution_options(
        isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@dataclass
class Running:
    """``conduit run`` on the standard channel, started by :func:`running_engine`."""

    engine: subprocess.Popen[str]
    downstream: Receiver
    port: int
    """Its MLLP source."""
    metrics_port: int
    """Its dashboard, where ``/metrics`` is served to this machine without login."""
    data: Path
    store_url: str | None
    """PostgreSQL's (None on SQLite)."""
    sent_url: str
    """Either store's, for reading it."""
    after_stop: list[Any]
    """Called once the engine has stopped, before its PostgreSQL database is dropped."""


@contextlib.contextmanager
def running_engine(options: Options, *, full_text: bool = False) -> Iterator[Running]:
    """Start ``conduit run`` on the standard channel (``full_text``: with
    ``search: {full_text: true}``) with its receiver; stop it and remove what it made after."""
    work = Path(tempfile.mkdtemp(prefix="conduit-bench-"))
    root = Path(options.out_dir) if options.out_dir else archive_root()
    archive = (Path(tempfile.mkdtemp(prefix="conduit-bench-out-", dir=root)) if root
               else work / "out")
    downstream = Receiver()
    port, metrics_port = free_port(), free_port()
    (work / "channels").mkdir()
    (work / "channels" / f"{CHANNEL}.yaml").write_text(yaml.safe_dump(
        channel_config(downstream.port, archive, port, options.fhir, full_text,
                       options.dest_connections)))
    # a free port (a busy 8080 must not stop a bench) that the bench knows: it reads /metrics
    env = {**os.environ, "CONDUIT_DATA_DIR": str(work / "data"), "CONDUIT_LOG_LEVEL": "warning",
           "CONDUIT_DASHBOARD_PORT": str(metrics_port)}
    env.pop("CONDUIT_BUS_URL", None)
    env.pop("CONDUIT_STORE_URL", None)
    pg_name = store_url = None
    if options.store == "postgresql":
        pg_name, store_url = make_postgres_db(options)
        env["CONDUIT_STORE_URL"] = store_url
    if options.bus == "amqp":
        env["CONDUIT_BUS_URL"] = options.amqp_url
        # a run that was interrupted may have left envelopes for a store that is gone
        from conduit.bus.base import dead_letter_queue, dest_queue, source_queue

        for queue in (source_queue(CHANNEL), dest_queue(CHANNEL, "downstream"),
                      dest_queue(CHANNEL, "archive"), dead_letter_queue(CHANNEL)):
            _delete_queue(options.amqp_url, queue)
    profiler = ["-m", "cProfile", "-o", options.profile] if options.profile else []
    engine = subprocess.Popen([sys.executable, *profiler, "-m", "conduit", "run",
                               str(work / "channels")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    tail: collections.deque[str] = collections.deque(maxlen=20)  # its last warnings
    drain: threading.Thread | None = None
    running = Running(engine, downstream, port, metrics_port, work / "data", store_url,
                      store_url or f"sqlite:///{work / 'data' / 'conduit.db'}", [])
    try:
        assert engine.stdout is not None
        for line in engine.stdout:
            if "conduit: ready" in line:
                break
        else:
            raise RuntimeError("engine did not start")
        # Keep reading its output: a full pipe would block the engine at its next log line.
        drain = threading.Thread(target=tail.extend, args=(engine.stdout,), daemon=True)
        drain.start()
        yield running
    finally:
        engine.terminate()
        try:
            engine.wait(20)
        except subprocess.TimeoutExpired:
            engine.kill()
        if drain is not None:
            drain.join(5)  # it ends at the engine's end of output
        if engine.stdout:
            engine.stdout.close()
        if tail:
            print("engine warnings (last 20):", *tail, sep="\n  ", file=sys.stderr)
        downstream.close()
        for call in running.after_stop:
            call()
        if pg_name:
            drop_postgres_db(options, pg_name)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(archive, ignore_errors=True)


def run_engine(options: Options, out: IO[str], *, full_text: bool = False) -> dict[str, Any]:
    """Start ``conduit run`` on the standard channel (``full_text``: with
    ``search: {full_text: true}``), drive it, measure it."""
    server_before: dict[str, float] = {}
    server_after: dict[str, float] = {}

    def server_counts() -> None:  # its backends gone, their statistics are all published
        assert store_url is not None
        wait_backends_gone(store_url)
        server_after.update(pg_server_counts(store_url))

    with running_engine(options, full_text=full_text) as running:
        engine, downstream, port = running.engine, running.downstream, running.port
        store_url, sent_url, data = running.store_url, running.sent_url, running.data
        run_load(port, options.warmup, options.connections, "W", None)
        if options.fhir:
            wait_sent(sent_url, options.warmup)
        else:
            downstream.wait_for(options.warmup)
            downstream.reset()
        wait_indexed(sent_url)
        before_bytes, before_fulltext = store_bytes(options, data, store_url)
        backends = pg_backends(store_url)
        if store_url:  # the warm-up's statistics published first (see PG_STATS_SETTLE)
            time.sleep(PG_STATS_SETTLE)
            server_before = pg_server_counts(store_url)
        # PostgreSQL's own profile of the window, when pg_stat_statements is loaded
        profiling = bool(store_url) and pgstatements.start(str(store_url))
        ops_before = scrape_operations(running.metrics_port)
        roles_before = cpu_by_process(engine.pid, downstream.process.pid, backends)
        load = run_load(port, options.messages, options.connections, "E", options.rate)
        # delivered over the same window as acknowledged, while the load was applied: what
        # waits in the queues when the senders stop is not in it
        if options.fhir:
            sent, counted_at = count_sent(sent_url)
            delivered_then = sent - options.warmup
        else:
            delivered_then, counted_at = downstream.count()
        delivered_at = (wait_sent(sent_url, options.warmup + options.messages) if options.fhir
                        else downstream.wait_for(options.messages))
        time.sleep(0.5)  # let the last group commit land before measuring the store
        wait_indexed(sent_url)
        # CPU up to here: the full-text index (background work, at a lower priority) catches up
        # after the last delivery, and its work belongs to these messages too
        roles = services_used(options, {
            role: seconds - roles_before[role] for role, seconds
            in cpu_by_process(engine.pid, downstream.process.pid, backends).items()})
        cpu = sum(roles[role] for role in ENGINE_ROLES)
        ops_after = scrape_operations(running.metrics_port)
        statements = pgstatements.read(str(store_url)) if profiling else []
        if store_url:
            running.after_stop.append(server_counts)
        after_bytes, after_fulltext = store_bytes(options, data, store_url)
        size, fulltext = after_bytes - before_bytes, after_fulltext - before_fulltext
        rss = peak_rss_mb(engine.pid)
    raw_size = len(load_message_sample())
    return {
        "acked_per_s": load.rate,
        "delivered_per_s": options.messages / (delivered_at - load.started),
        "delivered_while_loaded_per_s": delivered_then / (counted_at - load.started),
        "delivered_to_acked": (delivered_then / (counted_at - load.started) / load.rate
                               if load.rate else 0.0),
        "not_aa": load.not_aa,
        "ack_p50_ms": load.percentile(50) * 1000,
        "ack_p95_ms": load.percentile(95) * 1000,
        "ack_p99_ms": load.percentile(99) * 1000,
        "cpu_s_per_1000": cpu / options.messages * 1000,
        "cpu_s_per_1000_by_process": {role: round(seconds / options.messages * 1000, 3)
                                      for role, seconds in roles.items()},
        "peak_rss_mb": rss,
        "store_bytes_per_message": size / options.messages,
        "fulltext_bytes_per_message": fulltext / options.messages,
        "raw_bytes_per_message": raw_size,
        "ops_per_message": {key: round(value, 4) for key, value in per_message(
            ops_before | server_before, ops_after | server_after, options.messages).items()},
        "pg_statements": [pgstatements.per_message(statement, options.messages)
                          for statement in statements],
    }


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_ceiling(by_process: dict[str, float]) -> float:
    """Messages/s this machine could sustain at the CPU per message just measured, every
    process that shares it included and every CPU busy: what no arrangement of the same work
    can beat (to go past it, the work per message must shrink)."""
    per_message = sum(by_process.values()) / 1000
    return usable_cpus() / per_message if per_message else float("inf")


def load_message_sample() -> bytes:
    from conduit.bench.loadgen import message

    return message(0, "E")


def unreachable(options: Options) -> list[str]:
    """What the chosen modes need and cannot reach, a sentence each: checked before anything is
    measured, so that a service that is down is one line, not a traceback half-way through."""
    problems = []
    if options.bus == "amqp":
        import pika

        from conduit.bus.rabbitmq import RabbitBus, safe_url
        from conduit.core.errors import ConfigError

        try:
            parameters = pika.URLParameters(RabbitBus(options.amqp_url).url)
            parameters.connection_attempts, parameters.socket_timeout = 1, 3
            pika.BlockingConnection(parameters).close()
        except ConfigError as exc:
            problems.append(f"--amqp-url: {'; '.join(exc.problems)}")
        except Exception as exc:
            problems.append(f"RabbitMQ at {safe_url(options.amqp_url)} is not reachable "
                            f"({type(exc).__name__}): start it (rabbitmq-server -detached) or "
                            f"give --amqp-url")
    if options.store == "postgresql":
        import psycopg
        from sqlalchemy import make_url

        try:
            psycopg.connect(options.postgres_url, connect_timeout=3).close()
        except Exception as exc:
            reason = (str(exc).strip() or type(exc).__name__).splitlines()[0]
            problems.append(f"PostgreSQL at "
                            f"{make_url(options.postgres_url).render_as_string(hide_password=True)}"
                            f" is not reachable ({reason}): start it or give --postgres-url")
    return problems


def _fhir_build() -> str:
    """The converter the engine's processes load: mypyc-compiled or pure Python (the same
    environment and files as this process, so the same answer)."""
    from conduit.fhir import compiled

    return compiled.build


def benchmark(options: Options, out: IO[str] = sys.stdout) -> dict[str, Any]:
    def say(text: str) -> None:
        print(text, file=out, flush=True)

    mode = (f"bus={options.bus} store={options.store} connections={options.connections} "
            f"messages={options.messages}"
            + (f" dest-connections={options.dest_connections}"
               if options.dest_connections != Options.dest_connections else "")
            + (f" rate={options.rate:g}/s" if options.rate else "")
            + (f" fhir ({_fhir_build()})" if options.fhir else ""))
    root = options.out_dir or archive_root() or "the run's temporary folder"
    say(f"conduit bench: {mode}; store in a temporary folder, file destination under {root}")
    echo = baseline_echo(options)
    say(f"baseline raw MLLP echo: {echo.rate:,.0f} msg/s, ACK p50 {echo.percentile(50)*1000:.2f} "
        f"ms, p99 {echo.percentile(99)*1000:.2f} ms")
    amqp = None
    if options.bus == "amqp":
        amqp = baseline_amqp(options)
        say(f"baseline RabbitMQ publish+consume: {amqp:,.0f} msg/s")
    engine = run_engine(options, out)
    baseline = min(echo.rate, amqp) if amqp else echo.rate
    ratio = engine["delivered_per_s"] / baseline
    say(f"engine: {engine['acked_per_s']:,.0f} msg/s acknowledged, "
        f"{engine['delivered_while_loaded_per_s']:,.0f} msg/s delivered while loaded "
        f"({engine['delivered_to_acked']:.2f} of acknowledged), "
        f"{engine['delivered_per_s']:,.0f} msg/s delivered end to end "
        f"({ratio:.2f} of baseline)")
    say(f"engine ACK latency: p50 {engine['ack_p50_ms']:.2f} ms, p95 {engine['ack_p95_ms']:.2f} "
        f"ms, p99 {engine['ack_p99_ms']:.2f} ms; not AA: {engine['not_aa']}")
    by_process = engine["cpu_s_per_1000_by_process"]
    say("CPU s per 1,000 messages, by process: " + ", ".join(
        f"{role} {seconds:.3f}" for role, seconds in by_process.items()
        if seconds or role == "engine"))
    # at a fixed offered load the cost per message includes the idle loop's: no ceiling then
    ceiling = None if options.rate else cpu_ceiling(by_process)
    if ceiling:
        say(f"all of them {sum(by_process.values()):.3f} s per 1,000 messages: at that cost "
            f"this machine's {usable_cpus()} CPUs allow at most {ceiling:,.0f} msg/s (the "
            f"engine delivered {engine['delivered_per_s'] / ceiling:.0%} of that)")
    say(f"engine CPU {engine['cpu_s_per_1000']:.3f} s per 1,000 messages (its processes "
        f"together); peak RSS "
        f"{engine['peak_rss_mb']:.0f} MB; store {engine['store_bytes_per_message']:.0f} "
        f"bytes/message for {engine['raw_bytes_per_message']} raw bytes "
        f"({engine['store_bytes_per_message'] / engine['raw_bytes_per_message']:.2f}x), "
        f"of which the full-text index {engine['fulltext_bytes_per_message']:.0f}")
    say(ops_line(engine["ops_per_message"], options.store))
    if engine["pg_statements"]:
        say("PostgreSQL's statements in the window (pg_stat_statements), most time first:")
        for line in pgstatements.lines(engine["pg_statements"]):
            say("  " + line)
    shared = cluster_ceiling(options, by_process)
    say(ceiling_line(options, shared))
    # the same channel with search: {full_text: true}: what the opt-in costs
    text = run_engine(options, out, full_text=True)
    say(f"with full text on: {text['acked_per_s']:,.0f} msg/s acknowledged, "
        f"{text['delivered_per_s']:,.0f} msg/s delivered, ACK p99 {text['ack_p99_ms']:.2f} ms, "
        f"CPU {sum(text['cpu_s_per_1000_by_process'].values()):.3f} s per 1,000 messages (all "
        f"processes; the indexer {text['cpu_s_per_1000_by_process']['full-text indexer']:.3f}), "
        f"store {text['store_bytes_per_message']:.0f} bytes/message, of which the full-text "
        f"index {text['fulltext_bytes_per_message']:.0f}")
    summary = {"mode": {"bus": options.bus, "store": options.store, "out_dir": str(root),
                        "connections": options.connections, "messages": options.messages,
                        "rate": options.rate, "fhir": options.fhir,
                        "fhir_build": _fhir_build() if options.fhir else None,
                        "dest_connections": options.dest_connections},
               "baseline_echo_per_s": round(echo.rate, 1),
               "baseline_amqp_per_s": round(amqp, 1) if amqp else None,
               "ratio_to_baseline": round(ratio, 3),
               "cpu_ceiling_per_s": round(ceiling, 1) if ceiling else None,
               "cluster_ceiling": {k: round(v, 1) for k, v in shared.items()} if shared else None,
               **{k: round(v, 3) if isinstance(v, float) else v for k, v in engine.items()},
               "full_text": {k: round(v, 3) if isinstance(v, float) else v
                             for k, v in text.items()}}
    say(json.dumps(summary))
    return summary
