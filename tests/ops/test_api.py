"""The management API against a running engine: channel control, redeploy without losing
queued messages, --watch, search (full text), detail, reprocess, export, dead letters, stats."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from conduit.store.fulltext import Indexer
from tests.ops.helpers import adt, base_url, dashboard, file_channel, run
from tests.support import MllpReceiver, mllp_exchange, msa, source_port, wait_for


def _token(engine: Any, name: str) -> dict[str, str]:
    web = engine.service("dashboard").app.state.web
    return {"Authorization": f"Bearer {web.users.create_api_token(name)}"}


def _refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


def test_stop_pause_start_and_channel_listing(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path) as engine, httpx.AsyncClient(
                base_url=base_url(engine), headers=_token(engine, "operator")) as api:
            port = source_port(engine, "adt")
            answers = await asyncio.to_thread(mllp_exchange, port, [adt("A1"), adt("A2")])
            assert [msa(a)[1] for a in answers] == ["AA", "AA"]
            await wait_for(lambda: engine.store.counts()["adt"].get("SENT") == 2)
            engine.service("dashboard").app.state.web.extras.pop("counts", None)
            listed = (await api.get("/api/channels")).json()
            assert listed[0]["name"] == "adt" and listed[0]["state"] == "started"
            assert listed[0]["counts"]["received"] == 2 and listed[0]["counts"]["sent"] == 2
            assert listed[0]["destinations"] == [{"name": "archive", "type": "file",
                                                  "queue_depth": 0, "breaker": "none",
                                                  "ordered": False, "blocked": False,
                                                  "blocked_message": None,
                                                  "blocked_reason": None, "paused": None,
                                                  "sent_since_start": 2,
                                                  "failed_since_start": 0}]
            assert (await api.post("/api/channels/adt/stop")).json()["state"] == "stopped"
            assert await asyncio.to_thread(_refused, port)
            assert (await api.post("/api/channels/adt/start")).json()["state"] == "started"
            new_port = source_port(engine, "adt")
            answers = await asyncio.to_thread(mllp_exchange, new_port, [adt("A3")])
            assert msa(answers[0])[1] == "AA"
            assert (await api.post("/api/channels/adt/pause")).json()["state"] == "paused"
            assert await asyncio.to_thread(_refused, new_port)
            assert (await api.post("/api/channels/adt/resume")).json()["state"] == "started"
            assert (await api.post("/api/channels/nope/stop")).status_code == 404
            # operators may not redeploy (admin)
            assert (await api.post("/api/channels/adt/redeploy")).status_code == 403
            health = (await api.get("/api/health")).json()
            assert health["status"] == "ok" and health["channels"] == {"adt": "started"}
            assert health["classic_queues"] == []  # none on the embedded bus

    run(scenario)


def test_redeploy_keeps_queued_messages_and_applies_the_new_file(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path) as engine, httpx.AsyncClient(
                base_url=base_url(engine), headers=_token(engine, "admin")) as api:
            # hold the workers so messages wait in the queue, as a busy channel's would
            engine.control.buses["adt"].gate.clear()
            port = source_port(engine, "adt")
            payloads = [adt(f"Q{i}") for i in range(5)]
            answers = await asyncio.to_thread(mllp_exchange, port, payloads)
            assert all(msa(a)[1] == "AA" for a in answers)
            assert engine.store.counts()["adt"] == {"RECEIVED": 5}
            # the analyst changes the channel: a transform step, and another archive folder
            path = tmp_path / "channels" / "adt.yaml"
            changed = file_channel(tmp_path, transform=[{"set": {"field": "PV1-2",
                                                                 "value": "O"}}])
            changed["destinations"][0]["path"] = str(tmp_path / "new" / "{{ msg['MSH-10'] }}")
            path.write_text(yaml.safe_dump(changed))
            first = engine.runtimes["adt"]
            answer = await api.post("/api/channels/adt/redeploy")
            assert answer.json() == {"name": "adt", "state": "started"}
            assert engine.runtimes["adt"] is not first
            await wait_for(lambda: engine.store.counts()["adt"].get("SENT") == 5)
            written = sorted(p.name for p in (tmp_path / "new").iterdir())
            assert written == [f"Q{i}" for i in range(5)]  # each once, by the new runtime
            assert b"PV1|1|O|" in (tmp_path / "new" / "Q0").read_bytes()
            assert not (tmp_path / "out").exists()
            # a broken file is refused and the running channel stays as it was
            path.write_text("name: adt\nsource: {type: mllp, port: nope}\n")
            broken = await api.post("/api/channels/adt/redeploy")
            assert broken.status_code == 422 and "adt.yaml" in json.dumps(broken.json())
            assert engine.control.state("adt") == "started"
            # undeploy, then deploy from a path
            path.write_text(yaml.safe_dump(changed))
            assert (await api.post("/api/channels/adt/undeploy")).json()["state"] == "undeployed"
            assert "adt" not in engine.runtimes
            deployed = await api.post("/api/channels", json={"path": str(path)})
            assert deployed.json() == {"name": "adt", "state": "started"}
            audit = engine.service("dashboard").app.state.web.audit.list()
            assert {"channel-redeploy", "channel-undeploy", "channel-deploy"} <= {
                a["action"] for a in audit}

    run(scenario)


def test_watch_redeploys_a_changed_file(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path) as engine:
            first = engine.runtimes["adt"]
            engine.control.watch([tmp_path / "channels"], interval=0.05)
            path = tmp_path / "channels" / "adt.yaml"
            changed = file_channel(tmp_path, description="now watched")
            path.write_text(yaml.safe_dump(changed))
            await wait_for(lambda: engine.runtimes.get("adt") is not first
                           and "adt" in engine.runtimes)
            assert engine.control.channels["adt"].description == "now watched"
            answers = await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"),
                                              [adt("W1")])
            assert msa(answers[0])[1] == "AA"

    run(scenario)


def test_search_detail_reprocess_export_and_stats(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path, [file_channel(
                tmp_path, search={"full_text": True})]) as engine, httpx.AsyncClient(
                base_url=base_url(engine), headers=_token(engine, "operator")) as api:
            port = source_port(engine, "adt")
            payloads = [adt(f"S{i}", patient=f"PAT{i % 3}") for i in range(9)]
            payloads.append(b"MSH|^~\\&|LAB|HOSP|X|Y|20260101||ORU^R01|L1|P|2.5\r"
                            b"PID|1||PAT9^^^HOSP^MR||ZEBRA^QUINCY\rOBX|1|NM|GLU||5.5\r")
            await asyncio.to_thread(mllp_exchange, port, payloads)
            await wait_for(lambda: engine.store.counts()["adt"].get("SENT") == 10)
            await asyncio.to_thread(Indexer(engine.store.engine).run)

            async def ids(**query: Any) -> list[str]:
                answer = await api.get("/api/messages", params=query)
                assert answer.status_code == 200, answer.text
                return [m["control_id"] for m in answer.json()["items"]]

            assert await ids(q="zebra quincy") == ["L1"]
            assert await ids(q="zebra nothere") == []
            assert await ids(type="ORU") == ["L1"]
            assert await ids(control_id="S4") == ["S4"]
            assert await ids(patient="PAT1") == ["S7", "S4", "S1"]
            # search fields, written with each message (issue 16): MRN, name, ...
            assert await ids(field="MRN:PAT9") == ["L1"]
            assert await ids(field=["PID-5.1:FAMILYNAME", "MRN:PAT2"]) == ["S8", "S5", "S2"]
            assert await ids(field="PID-5.1:NOBODY") == []
            assert (await api.get("/api/messages", params={"field": "MRN"})).status_code == 422
            assert await ids(status="ERROR") == []
            assert len(await ids(since="1h")) == 10
            assert await ids(until="2000-01-01T00:00") == []
            first = (await api.get("/api/messages", params={"limit": 4})).json()
            second = (await api.get("/api/messages", params={"limit": 4,
                                                             "before": first["next"]})).json()
            assert len(second["items"]) == 4 and second["items"][0]["id"] < first["next"]
            assert (await api.get("/api/messages", params={"status": "BOGUS"})).status_code \
                == 422
            assert (await api.get("/api/messages", params={"since": "yesterday"})).status_code \
                == 422

            message_id = first["items"][0]["id"]
            shown = (await api.get(f"/api/messages/{message_id}")).json()
            assert shown["raw"].startswith("MSH|") and shown["deliveries"][0]["status"] == "SENT"
            assert (await api.get("/api/messages/999999")).status_code == 404

            again = await api.post(f"/api/messages/{message_id}/reprocess")
            assert again.json() == {"id": message_id, "mode": "reprocess"}
            resend = await api.post(f"/api/messages/{message_id}/reprocess",
                                    json={"destinations": ["archive"]})
            assert resend.json()["mode"] == "resend"

            def reprocessed() -> bool:
                record = engine.store.get(message_id)
                return record is not None and record.status == "SENT" and sum(
                    1 for e in record.events if e[1] == "reprocess") == 2
            await wait_for(reprocessed)
            bulk = await api.post("/api/messages/reprocess", json={"ids": [message_id, 424242]})
            assert bulk.json()["reprocessed"] == 1 and "error" in bulk.json()["results"][1]

            export = await api.get("/api/messages/export", params={"patient": "PAT0"})
            lines = [json.loads(line) for line in export.text.splitlines()]
            assert [m["control_id"] for m in lines] == ["S6", "S3", "S0"]
            assert lines[0]["raw"].startswith("MSH|")
            hl7 = await api.get("/api/messages/export", params={"type": "ORU", "format": "hl7"})
            assert hl7.text.startswith("MSH|") and "ZEBRA" in hl7.text
            web = engine.service("dashboard").app.state.web
            exported = web.audit.list(action="export")
            assert len(exported) == 4 and all(a["username"] == "operator" for a in exported)

            stats = (await api.get("/api/stats", params={"since": "1h",
                                                         "bucket": "minute"})).json()
            assert sum(s["count"] for s in stats["series"]) == 10
            assert "adt" in stats["per_second"]
            assert (await api.get("/api/deadletters")).json()["items"] == []
            assert (await api.get("/api/breakers")).json() == [
                {"channel": "adt", "destination": "archive", "state": "none"}]

    run(scenario)


@pytest.mark.timeout(60)
def test_dead_letters_listed_and_replayed_with_breaker_state(tmp_path: Path) -> None:
    answers: list[str] = []
    receiver = MllpReceiver(answer=lambda m: answers[-1] if answers else "AR")  # refuses all
    receiver_port = receiver.port
    channel = {"name": "lab", "source": {"type": "mllp", "host": "127.0.0.1", "port": 0},
               "destinations": [{"name": "lis", "type": "mllp", "host": "127.0.0.1",
                                 "port": receiver_port, "ack_timeout": "1s",
                                 "retry": {"attempts": 1, "initial": "10ms", "max": "10ms"},
                                 "breaker": {"failures": 50, "reset": "1s"}}]}
    with receiver:
        async def scenario() -> None:
            async with dashboard(tmp_path, channels=[channel]) as engine, httpx.AsyncClient(
                    base_url=base_url(engine), headers=_token(engine, "operator")) as api:
                await asyncio.to_thread(mllp_exchange, source_port(engine, "lab"),
                                        [adt("D1"), adt("D2")])
                await wait_for(lambda: engine.store.counts()["lab"].get("ERROR") == 2)
                dead = (await api.get("/api/deadletters", params={"channel": "lab"})).json()
                assert [d["control_id"] for d in dead["items"]] == ["D2", "D1"]
                assert dead["items"][0]["destination"] == "lis"
                breakers = (await api.get("/api/breakers")).json()
                assert breakers == [{"channel": "lab", "destination": "lis",
                                     "state": "closed"}]
                reset = await api.post("/api/breakers/lab/lis/reset")
                assert reset.json()["state"] == "closed"
                answers.append("AA")  # the receiver is fixed
                replay = await api.post("/api/deadletters/replay",
                                        json={"channel": "lab", "destination": "lis"})
                assert replay.json() == {"replayed": 2, "failed": []}
                await wait_for(lambda: engine.store.counts()["lab"].get("SENT") == 2)
                assert receiver.control_ids().count("D1") == 2

        run(scenario)


def test_the_dashboard_indexes_in_a_process_of_its_own(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Full-text indexing runs beside the engine, not in it (in a thread it competed with the
    event loop for the GIL and slowed every message): the engine's own Indexer is never run."""
    def not_here(*_: Any, **__: Any) -> int:
        raise AssertionError("indexed in the engine process")

    monkeypatch.setattr(Indexer, "run", not_here)

    async def scenario() -> None:
        async with dashboard(tmp_path, [file_channel(
                tmp_path, search={"full_text": True})]) as engine, httpx.AsyncClient(
                base_url=base_url(engine), headers=_token(engine, "operator")) as api:
            await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"),
                                    [adt("F1", patient="PATFTS")])

            async def found() -> bool:
                answer = await api.get("/api/messages", params={"q": "patfts"})
                return [m["control_id"] for m in answer.json()["items"]] == ["F1"]

            for _ in range(150):  # the first pass starts the process (about a second)
                if await found():
                    break
                await asyncio.sleep(0.1)
            assert await found()
            pool = engine.service("full-text indexing")._process
            assert pool is not None
            # background work: the hot path's processes come first when the CPU is short
            for process in pool._processes.values():
                assert os.getpriority(os.PRIO_PROCESS, process.pid) >= 10
                with open(f"/proc/{process.pid}/comm") as comm:
                    assert comm.read().strip() == "conduit-indexer"

    run(scenario)
