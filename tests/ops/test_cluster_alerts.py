"""Issue 16, item 4: on a PostgreSQL store the alert rules that read shared state run once per
cluster; those that read a process's own counts and breakers stay in every process."""

from __future__ import annotations

import asyncio
from pathlib import Path

from conduit.engine.engine import Engine
from conduit.engine.services import ClusterLeased
from conduit.engine.settings import Settings
from conduit.ops.attach import attach

RULES = [{"name": "errors", "kind": "error-rate", "threshold": 0.1},
         {"name": "backlog", "kind": "queue-depth", "threshold": 1000},
         {"name": "quiet", "kind": "idle", "for": "1h"},
         {"name": "down", "kind": "breaker-open"}]


def _engine(tmp_path: Path, store_url: str) -> Engine:
    settings = Settings(data_dir=tmp_path / "data", store_url=store_url,
                        alerts={"rules": RULES}, dashboard={"enabled": False})
    return Engine(settings, [])


def test_shared_rules_run_once_per_cluster_own_rules_everywhere(
        tmp_path: Path, postgres_url: str) -> None:
    engine = _engine(tmp_path, postgres_url)
    engine.store.migrate()
    ops = attach(engine)
    assert ops.alerter is not None and ops.cluster_alerter is not None
    assert [r.name for r in ops.alerter.settings.rules] == ["errors", "down"]
    assert [r.name for r in ops.cluster_alerter.settings.rules] == ["backlog", "quiet"]
    leased = {s.name for s in engine.services if isinstance(s, ClusterLeased)}
    assert "cluster-alerts" in leased and len(leased) >= 2  # the alerts and the engine's jobs
    assert "alerts" in {s.name for s in engine.services if not isinstance(s, ClusterLeased)}
    asyncio.run(engine.store.close())


def test_embedded_alerts_are_all_in_process(tmp_path: Path, sqlite_url: str) -> None:
    engine = _engine(tmp_path, sqlite_url)
    ops = attach(engine)
    assert ops.cluster_alerter is None and ops.alerter is not None
    assert len(ops.alerter.settings.rules) == 4
    assert not any(isinstance(s, ClusterLeased) for s in engine.services)
    asyncio.run(engine.store.close())
