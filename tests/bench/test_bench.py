"""`conduit bench --short` completes and prints its figures (the figures are not judged here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="module")
def short_run() -> tuple[list[str], dict[str, Any]]:
    """One ``conduit bench --short`` (embedded), read by several tests: its lines and JSON."""
    result = subprocess.run([sys.executable, "-m", "conduit", "bench", "--short"],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    return lines, json.loads(lines[-1])


def test_short_benchmark_runs_and_ends_with_json(
        short_run: tuple[list[str], dict[str, Any]]) -> None:
    lines, _ = short_run
    assert any(line.startswith("baseline raw MLLP echo:") for line in lines)
    summary = json.loads(lines[-1])
    assert summary["not_aa"] == 0
    assert summary["acked_per_s"] > 0 and summary["delivered_per_s"] > 0
    assert summary["baseline_echo_per_s"] > 0 and summary["ratio_to_baseline"] > 0
    # delivered over the acknowledged rate's own window, while loaded (not after a drain)
    loaded = summary["delivered_while_loaded_per_s"]
    assert 0 < loaded <= summary["acked_per_s"] * 1.05
    assert summary["delivered_to_acked"] == pytest.approx(loaded / summary["acked_per_s"],
                                                          abs=0.002)
    assert any(line.startswith("engine: ") and " msg/s delivered while loaded (" in line
               and " of acknowledged)" in line for line in lines)
    for key in ("ack_p50_ms", "ack_p99_ms", "cpu_s_per_1000", "peak_rss_mb",
                "store_bytes_per_message"):
        assert summary[key] > 0, key
    # the standard channel keeps the default: search fields on, full text off (issue 16) ...
    assert summary["fulltext_bytes_per_message"] == 0
    # ... and a second run has it on: the store is measured with the index caught up
    text = summary["full_text"]
    assert text["not_aa"] == 0 and text["delivered_per_s"] > 0
    assert 0 < text["fulltext_bytes_per_message"] < text["store_bytes_per_message"]
    assert any(line.startswith("with full text on: ") for line in lines)
    # CPU per process: the engine's own, named by role, add up to its total
    by_process = summary["cpu_s_per_1000_by_process"]
    assert by_process["engine"] > 0 and by_process["store writer"] > 0
    assert by_process["load generator"] > 0
    assert by_process["full-text indexer"] >= 0 and by_process["receiver"] >= 0  # 10 ms ticks
    engine_total = sum(by_process[r] for r in ("engine", "store writer", "full-text indexer"))
    assert abs(engine_total - summary["cpu_s_per_1000"]) < 0.1 * summary["cpu_s_per_1000"] + 0.05
    assert any(line.startswith("CPU s per 1,000 messages, by process: engine") for line in lines)
    # the rate those costs would allow with every CPU of this machine busy
    total = sum(by_process.values())
    assert abs(summary["cpu_ceiling_per_s"] * total / 1000 - len(os.sched_getaffinity(0))) < 0.01
    assert any(line.startswith("all of them ") and "allow at most" in line for line in lines)


def _ops(lines: list[str]) -> dict[str, float]:
    """The ``ops/msg:`` line's figures by name (``store stmts`` as ``stmts``)."""
    line = next(line for line in lines if line.startswith("ops/msg: "))
    words = line.removeprefix("ops/msg: ").split(" (")[0].split(";")[0].replace(
        "store stmts", "stmts").split()
    return {name: float(value) for name, value in zip(words[::2], words[1::2], strict=True)}


def test_operations_per_message_embedded(short_run: tuple[list[str], dict[str, Any]]) -> None:
    """What one message costs the bus and the store, counted by the engine (its /metrics before
    and after the window): the standard channel publishes each message once, to its two
    destinations' queues (two deliveries), a group commit carries several messages, each commit
    is an fsync on SQLite."""
    lines, summary = short_run
    ops = _ops(lines)
    assert ops["publish"] == 1.0 and ops["deliver"] == ops["ack"] == 2.0
    assert ops["confirm"] == 0
    assert 0 < ops["commits"] <= 1 and ops["fsyncs"] == ops["commits"]
    assert ops["commits"] <= ops["stmts"] and 3 <= ops["rows"] <= 30
    counted = summary["ops_per_message"]
    assert counted["publish"] == 1.0 and counted["store commits"] == pytest.approx(
        ops["commits"], abs=0.001)
    # no shared service to size in this mode, and it says so
    assert summary["cluster_ceiling"] is None
    assert any(line.startswith("cluster ceiling: none here") for line in lines)


def test_short_benchmark_on_quorum_queues() -> None:
    """--amqp-url takes Conduit's own URL options (the bench's queue handling used to hand
    them to pika, which refused them)."""
    url = "amqp://guest:guest@127.0.0.1:5672/%2F?queue_type=quorum"
    result = subprocess.run([sys.executable, "-m", "conduit", "bench", "--short", "--bus",
                             "amqp", "--amqp-url", url, "--ceiling-cores", "3"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert any(line.startswith("baseline RabbitMQ publish+consume:") for line in lines)
    summary = json.loads(lines[-1])
    assert summary["not_aa"] == 0 and summary["delivered_per_s"] > 0
    # RabbitMQ's operations: one publish a message, routed to both destinations' queues, and
    # confirmed; acks (several per frame) at most one per delivery, confirms (several per
    # frame) at most one per publish
    ops = _ops(lines)
    assert ops["publish"] == 1.0 and ops["deliver"] == 2.0
    assert 0 < ops["ack"] <= 2 and 0 < ops["confirm"] <= 1
    # the broker's CPU per message sizes a cluster: per core, times the cores given
    ceiling = summary["cluster_ceiling"]
    assert ceiling["cores"] == 3 and "postgresql_per_core" not in ceiling
    if "rabbitmq_per_core" in ceiling:  # its CPU moved in the window (10 ms ticks)
        assert ceiling["per_s"] == pytest.approx(3 * ceiling["rabbitmq_per_core"], rel=0.01)
    assert any(line.startswith("cluster ceiling: RabbitMQ ") and "with 3 cores each" in line
               for line in lines)


def test_fhir_mode_converts_each_message_to_a_bundle(tmp_path: Path) -> None:
    from conduit.bench.loadgen import message
    from conduit.bench.runner import channel_config
    from conduit.engine.channel import channel_model
    from conduit.engine.pipeline import Pipeline

    config = channel_config(1, tmp_path, 2, fhir=True)
    result = Pipeline(channel_model().model_validate(config)).process(message(1, "E"))
    assert result.status == "TRANSFORMED"
    bundle = json.loads(result.routes[0].content or b"")
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
    assert [r.destination for r in result.routes] == ["archive"]

    run = subprocess.run([sys.executable, "-m", "conduit", "bench", "--short", "--fhir",
                          "--out-dir", str(tmp_path)], capture_output=True, text=True,
                         timeout=180)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["mode"]["fhir"] is True and summary["delivered_per_s"] > 0


def test_a_service_that_is_down_is_one_line_before_anything_is_measured() -> None:
    """--bus amqp and --store postgresql check their service first: a clear line and exit 1,
    with no password in it, instead of a traceback after the baselines."""
    for args, expected in (
            (["--bus", "amqp", "--amqp-url", "amqp://guest:secret@127.0.0.1:1//"],
             "RabbitMQ at amqp://127.0.0.1:1// is not reachable"),
            (["--store", "postgresql", "--postgres-url",
              "postgresql://postgres:secret@127.0.0.1:1/test"],
             "PostgreSQL at postgresql://postgres:***@127.0.0.1:1/test is not reachable"),
            (["--bus", "amqp", "--amqp-url", "amqp://127.0.0.1:5672//?queue_type=fast"],
             "--amqp-url: bus URL: queue_type must be classic or quorum")):
        result = subprocess.run([sys.executable, "-m", "conduit", "bench", "--short", *args],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, result.stdout + result.stderr
        assert expected in result.stderr and "Traceback" not in result.stderr
        assert "secret" not in result.stderr and "baseline" not in result.stdout


def test_cluster_ceiling_from_the_shared_services_cpu_per_message() -> None:
    """RabbitMQ's and PostgreSQL's CPU per message (s per 1,000) give each one's msg/s per
    core; the first to saturate with the cores given bounds a cluster of engine hosts."""
    from conduit.bench.runner import Options, ceiling_line, cluster_ceiling, ops_line

    by_process = {"engine": 3.0, "RabbitMQ": 0.5, "PostgreSQL": 0.5,
                  "PostgreSQL for the store writer": 1.0, "PostgreSQL for the indexer": 0.0}
    options = Options(bus="amqp", store="postgresql", ceiling_cores=3)
    ceiling = cluster_ceiling(options, by_process)
    assert ceiling is not None
    assert ceiling["rabbitmq_per_core"] == pytest.approx(2000)
    assert ceiling["postgresql_per_core"] == pytest.approx(1000 / 1.5)
    assert ceiling["postgresql_own_connections_per_core"] == pytest.approx(1000)
    assert ceiling["per_s"] == pytest.approx(3 * 1000 / 1.5)
    assert ceiling_line(options, ceiling) == (
        "cluster ceiling: RabbitMQ 2,000 msg/s per core, PostgreSQL 667 msg/s per core (1,000 "
        "counting only the store's own connections) → with 3 cores each (--ceiling-cores), a "
        "cluster of engine hosts saturates them at 2,000 msg/s")
    assert cluster_ceiling(Options(), by_process) is None
    # PostgreSQL counts its own WAL fsyncs, commits and rows beside the engine's counts
    line = ops_line({"publish": 2, "deliver": 2, "ack": 0.2, "confirm": 1.3,
                     "store statements": 0.8, "store rows": 10, "store commits": 0.125,
                     "server commits": 0.15, "server rows": 10.01, "WAL fsyncs": 0.16,
                     "WAL writes": 0.2}, "postgresql")
    assert line.startswith("ops/msg: publish 2.00  deliver 2.00  ack 0.20  confirm 1.30  store "
                           "stmts 0.80  rows 10.00  commits 0.125  fsyncs 0.160; PostgreSQL's "
                           "own count: commits 0.150  rows 10.01  WAL writes 0.200")


def test_embedded_mode_counts_no_rabbitmq_or_postgresql_cpu() -> None:
    """Embedded bus and SQLite use neither service: their CPU on the machine is not these
    messages' cost (another helper's PostgreSQL backend exiting made it -0.783 s per 1,000)."""
    from conduit.bench.runner import Options, services_used

    roles = {"engine": 1.2, "store writer": 0.5, "RabbitMQ": 0.2, "PostgreSQL": -0.8,
             "PostgreSQL for the store writer": 0.0, "load generator": 0.05}
    assert services_used(Options(), roles) == {
        "engine": 1.2, "store writer": 0.5, "RabbitMQ": 0.0, "PostgreSQL": 0.0,
        "PostgreSQL for the store writer": 0.0, "load generator": 0.05}
    assert services_used(Options(bus="amqp"), roles)["RabbitMQ"] == 0.2
    assert services_used(Options(bus="amqp"), roles)["PostgreSQL"] == 0.0
    assert services_used(Options(store="postgresql"), roles) == {**roles, "RabbitMQ": 0.0}


def test_dest_connections_sets_the_mllp_destinations_pool(tmp_path: Path) -> None:
    """``--dest-connections``: the connections the standard channel's MLLP destination keeps
    (4 unless given), to see what delivery gains from more messages in flight."""
    from click.testing import CliRunner

    from conduit.bench import runner
    from conduit.cli import main

    def downstream(config: dict[str, Any]) -> dict[str, Any]:
        return next(d for d in config["destinations"] if d["name"] == "downstream")

    assert downstream(runner.channel_config(1, tmp_path, 2, False))["connections"] == 4
    assert downstream(runner.channel_config(1, tmp_path, 2, False, dest_connections=16)
                      )["connections"] == 16
    seen: list[runner.Options] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "benchmark", seen.append)
        result = CliRunner().invoke(main, ["bench", "--dest-connections", "16"])
        assert result.exit_code == 0, result.output
        assert CliRunner().invoke(main, ["bench", "--dest-connections", "65"]).exit_code == 2
    assert [options.dest_connections for options in seen] == [16]
