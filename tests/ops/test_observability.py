"""Metrics, health, JSON logs with correlation ids, and the dashboard over TLS."""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from pathlib import Path
from typing import Any

import httpx
import trustme

from tests.ops.helpers import adt, base_url, dashboard, file_channel, run
from tests.support import (
    engine_process,
    mllp_exchange,
    msa,
    source_port,
    wait_for,
    write_channel,
)


def _token(engine: Any, name: str = "viewer") -> dict[str, str]:
    web = engine.service("dashboard").app.state.web
    return {"Authorization": f"Bearer {web.users.create_api_token(name)}"}


def _metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} {labels} not in metrics")


def test_prometheus_metrics_per_channel_and_destination(tmp_path: Path) -> None:
    channel = file_channel(tmp_path, filter={"all": [{"field": "MSH-9.1", "equals": "ADT"}]})

    async def scenario() -> None:
        async with dashboard(tmp_path, channels=[channel], metrics_loopback=False) as engine, \
                httpx.AsyncClient(base_url=base_url(engine)) as client:
            port = source_port(engine, "adt")
            oru = adt("O1").replace(b"ADT^A01^ADT_A01", b"ORU^R01")
            answers = await asyncio.to_thread(mllp_exchange, port, [
                adt("M1"), adt("M2"), oru, b"this is not an HL7 message"])
            assert [msa(a)[1] for a in answers] == ["AA", "AA", "AA", "AR"]
            await wait_for(lambda: engine.store.counts()["adt"].get("SENT") == 2)
            assert (await client.get("/metrics")).status_code == 401
            text = (await client.get("/metrics", headers=_token(engine))).text
            assert _metric(text, "conduit_messages_received_total", channel="adt") == 4
            assert _metric(text, "conduit_messages_filtered_total", channel="adt") == 1
            assert _metric(text, "conduit_messages_sent_total", channel="adt") == 2
            assert _metric(text, "conduit_messages_errored_total", channel="adt") == 1
            assert _metric(text, "conduit_acks_total", channel="adt", code="AA") == 3
            assert _metric(text, "conduit_acks_total", channel="adt", code="AR") == 1
            assert _metric(text, "conduit_deliveries_total", channel="adt",
                           destination="archive", status="SENT") == 2
            assert _metric(text, "conduit_end_to_end_seconds_count", channel="adt") == 2
            assert _metric(text, "conduit_processing_seconds_count", channel="adt") == 3
            assert _metric(text, "conduit_delivery_seconds_count", channel="adt",
                           destination="archive") == 2
            assert _metric(text, "conduit_queue_depth", channel="adt",
                           queue="conduit.adt.source") == 0
            assert _metric(text, "conduit_channel_up", channel="adt", state="started") == 1
        async with dashboard(tmp_path / "public", metrics_public=True) as engine, \
                httpx.AsyncClient(base_url=base_url(engine)) as client:
            assert (await client.get("/metrics")).status_code == 200

    run(scenario)


def test_conduit_run_serves_the_dashboard_and_logs_json_with_correlation_ids(
        tmp_path: Path) -> None:
    folder = tmp_path / "channels"
    write_channel(folder, {"name": "http-in", "data_type": "hl7v2",
                           "source": {"type": "http", "host": "127.0.0.1", "port": 0,
                                      "path": "/in"},
                           "destinations": [{"name": "archive", "type": "file",
                                             "path": str(tmp_path / "out" / "{{ id }}.hl7")}]})
    env = {"CONDUIT_LOG_FORMAT": "json", "CONDUIT_DASHBOARD_PORT": "0"}
    with engine_process(folder, tmp_path / "data", env=env) as engine:
        output = "".join(engine.output)
        dashboard_url = re.search(r"conduit: dashboard (http://\S+)", output)
        listener = re.search(r"listening on (http://\S+/in)", output)
        assert dashboard_url and listener, output
        with httpx.Client(base_url=dashboard_url.group(1)) as client:
            assert client.get("/readyz").json()["status"] == "ready"
            assert client.get("/api/channels", headers={"X-Request-Id": "dash-1"}
                              ).status_code == 401
        secret = b"MSH|^~\\&|A|B|C|D|20260101||ADT^A01|SECRET-NAME|P|2.5\rPID|1||SMITH\r"
        refused = httpx.post(listener.group(1), content=b"SECRETPAYLOAD not hl7",
                             headers={"Content-Type": "text/plain",
                                      "X-Request-Id": "corr-42"})
        assert refused.status_code == 400 and refused.headers["x-request-id"] == "corr-42"
        accepted = httpx.post(listener.group(1), content=secret,
                              headers={"Content-Type": "text/plain"})
        assert accepted.status_code in (200, 202), accepted.text
        assert len(accepted.headers["x-request-id"]) == 32
    lines = [json.loads(line) for line in engine.output if line.startswith("{")]
    requests = [e for e in lines if e.get("event") == "http request"]
    assert any(e["request_id"] == "dash-1" and e["status"] == 401 for e in requests)
    refusals = [e for e in lines if e.get("request_id") == "corr-42"]
    assert refusals and all(isinstance(e.get("message_id"), int) for e in refusals)
    assert all(e["level"] in ("info", "warning", "error") and "timestamp" in e for e in lines)
    text = "".join(engine.output)
    assert "SECRETPAYLOAD" not in text and "SECRET-NAME" not in text and "SMITH" not in text


def test_dashboard_over_tls_with_secure_cookies(tmp_path: Path) -> None:
    authority = trustme.CA()
    server = authority.issue_cert("127.0.0.1", "localhost")
    cert, key = tmp_path / "dash.pem", tmp_path / "dash.key"
    server.cert_chain_pems[0].write_to_path(str(cert))
    server.private_key_pem.write_to_path(str(key))
    context = ssl.create_default_context()
    authority.configure_trust(context)

    async def scenario() -> None:
        async with dashboard(tmp_path, tls_cert=str(cert), tls_key=str(key)) as engine:
            url = base_url(engine)
            assert url.startswith("https://")
            async with httpx.AsyncClient(base_url=url, verify=context) as client:
                assert (await client.get("/healthz")).status_code == 200
                login = await client.get("/login")
                assert "Secure" in login.headers["set-cookie"]
                assert login.headers["strict-transport-security"].startswith("max-age=")
            async with httpx.AsyncClient(base_url=url.replace("https", "http")) as plain:
                try:
                    answer = await plain.get("/healthz")
                except httpx.HTTPError:
                    pass
                else:
                    assert answer.status_code >= 400

    run(scenario)


def _outside_address() -> str | None:
    """An address of this machine that is not loopback (None when it has none)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_metrics_from_loopback_without_login_elsewhere_with_a_token(tmp_path: Path) -> None:
    """Prometheus beside the engine scrapes /metrics as it is; from another machine it sends a
    token (`conduit users token NAME`), unless metrics_public is set."""
    outside = _outside_address()

    async def scenario() -> None:
        async with dashboard(tmp_path, host="0.0.0.0") as engine:
            port = engine.service("dashboard").port
            async with httpx.AsyncClient() as client:
                local = await client.get(f"http://127.0.0.1:{port}/metrics")
                assert local.status_code == 200 and "conduit_" in local.text
                assert (await client.get(f"http://127.0.0.1:{port}/api/channels")
                        ).status_code == 401
                if outside is not None:
                    remote = await client.get(f"http://{outside}:{port}/metrics")
                    assert remote.status_code == 401
                    with_token = await client.get(f"http://{outside}:{port}/metrics",
                                                  headers=_token(engine))
                    assert with_token.status_code == 200
        async with dashboard(tmp_path / "off", metrics_loopback=False) as engine, \
                httpx.AsyncClient(base_url=base_url(engine)) as client:
            assert (await client.get("/metrics")).status_code == 401

    run(scenario)
