"""Correlation id end to end: the sender's X-Request-Id is stored with the message, sent on by
the HTTP destination to a real receiver, and shown by `conduit messages show` and the API."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from conduit.connectors.base import ConnectorContext
from conduit.connectors.fhir import FhirDestination, FhirDestinationConfig
from conduit.connectors.soap import SoapDestination, SoapDestinationConfig
from conduit.core.protocols import Outbound
from tests.connectors.peers import HttpPeer, Reply, Seen, json_reply
from tests.connectors.test_http import post, rest_channel
from tests.connectors.test_soap import archive, soap_source
from tests.ops.helpers import adt, base_url, dashboard, file_channel
from tests.support import mllp_exchange, running_engine, source_port, wait_for


def _token(engine: object) -> dict[str, str]:
    web = engine.service("dashboard").app.state.web  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {web.users.create_api_token('operator')}"}


def test_x_request_id_travels_from_rest_sender_to_http_receiver(tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []

    def answer(request: Seen) -> Reply:
        seen.append({k.lower(): v for k, v in request.headers.items()})
        return json_reply({"ok": True})

    with HttpPeer(answer) as peer:
        channel = rest_channel(tmp_path, destinations=[
            {"name": "api", "type": "http", "url": peer.url("/items")}])

        async def scenario() -> int:
            async with dashboard(tmp_path, [channel]) as engine, httpx.AsyncClient(
                    base_url=base_url(engine), headers=_token(engine)) as api:
                port = source_port(engine, "rest")
                status, headers, body = await asyncio.to_thread(
                    post, port, "/api/in", b'{"n": 1}', headers={"X-Request-Id": "abc"})
                assert status == 202 and headers["x-request-id"] == "abc"
                message_id = json.loads(body)["id"]
                await wait_for(lambda: engine.store.get(message_id).status == "SENT")
                assert seen and seen[0]["x-request-id"] == "abc"
                detail = (await api.get(f"/api/messages/{message_id}")).json()
                assert detail["correlation_id"] == "abc"
                # Without a header the listener makes one, and the receiver gets that one.
                status, headers, body = await asyncio.to_thread(post, port, "/api/in", b"{}")
                made = headers["x-request-id"]
                other = json.loads(body)["id"]
                await wait_for(lambda: engine.store.get(other).status == "SENT")
                assert seen[1]["x-request-id"] == made
                assert engine.store.get(other).correlation_id == made
            return int(message_id)

        message_id = asyncio.run(scenario())
    shown = subprocess.run(
        [sys.executable, "-m", "conduit", "messages", "show", str(message_id)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "CONDUIT_DATA_DIR": str(tmp_path / "data")})
    assert shown.returncode == 0, shown.stderr
    assert "correlation id abc" in shown.stdout


def test_mllp_messages_get_msh10_as_correlation_id(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path, [file_channel(tmp_path)]) as engine:
            await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"), [adt("C42")])
            await wait_for(lambda: engine.store.counts().get("adt", {}).get("SENT") == 1)
            (record,) = engine.store.search(channel="adt")
            assert record.correlation_id == "C42"
    asyncio.run(scenario())


def test_fhir_destination_sends_x_request_id() -> None:
    seen: list[Seen] = []

    def handler(request: Seen) -> Reply:
        seen.append(request)
        return json_reply({"resourceType": "Patient", "id": "1"}, 201)

    with HttpPeer(handler) as peer:
        async def scenario() -> None:
            destination = FhirDestination(
                FhirDestinationConfig(name="repo", type="fhir", url=peer.url("/r4")),
                ConnectorContext("c", Path(".")))
            await destination.send(Outbound(1, "c", "repo", b'{"resourceType": "Patient"}',
                                            correlation_id="corr-fhir"))
            await destination.close()
        asyncio.run(scenario())
    assert seen[0].headers["x-request-id"] == "corr-fhir"


def test_soap_destination_sends_x_request_id_to_a_soap_listener(tmp_path: Path) -> None:
    """The SOAP destination (zeep) calls Conduit's own SOAP listener, which keeps the id."""
    channel = {"name": "soap-in", "source": soap_source(), "destinations": archive(tmp_path)}

    async def scenario() -> None:
        async with running_engine([channel], tmp_path) as engine:
            wsdl = f"http://127.0.0.1:{source_port(engine, 'soap-in')}/soap/registration?wsdl"
            destination = SoapDestination(SoapDestinationConfig(
                name="reg", type="soap", wsdl=wsdl, operation="RegisterPatient",
                arguments={"mrn": "M1", "familyName": "Test", "birthDate": "1980-01-01"}),
                ConnectorContext("c", Path(".")))
            answer = await destination.send(Outbound(1, "c", "reg", b"x",
                                                     correlation_id="corr-soap"))
            await destination.close()
            stored = engine.store.get(int(json.loads(answer)["messageId"]))
            assert stored is not None and stored.correlation_id == "corr-soap"
    asyncio.run(scenario())
