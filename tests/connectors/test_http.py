"""The REST source and destination over real sockets: stdlib http.client / urllib as the
independent sender, a stdlib http.server as the independent receiver."""

from __future__ import annotations

import asyncio
import http.client
import json
import ssl
import time
from pathlib import Path
from typing import Any

import pytest

from conduit.connectors.base import ConnectorContext
from conduit.connectors.http import HttpDestination, HttpDestinationConfig
from conduit.core.errors import PermanentError, RetryableError
from conduit.core.protocols import Outbound
from tests.connectors.peers import (
    HttpPeer,
    Reply,
    Seen,
    json_reply,
    make_certs,
    server_context,
)
from tests.support import running_engine, source_port, wait_for

ADT = (b"MSH|^~\\&|REG|HOSP|ADT|HOSP|20260101120000||ADT^A01^ADT_A01|MSG0001|P|2.5\r"
       b"PID|1||PAT123^^^HOSP^MR||TESTPATIENT^ALPHA||19800101|F\r")


def post(port: int, path: str, body: bytes, content_type: str = "application/json",
         method: str = "POST", context: ssl.SSLContext | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request with http.client (not Conduit's code, not httpx)."""
    if context is None:
        connection: http.client.HTTPConnection = http.client.HTTPConnection(
            "127.0.0.1", port, timeout=10)
    else:
        connection = http.client.HTTPSConnection("localhost", port, timeout=10, context=context)
    try:
        connection.request(method, path, body=body,
                           headers={"Content-Type": content_type, **(headers or {})})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def rest_channel(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    source = {"type": "http", "host": "127.0.0.1", "port": 0, "path": "/api/in",
              "max_body_bytes": 4096, **extra.pop("source", {})}
    return {"name": "rest", "source": source,
            "destinations": extra.pop("destinations", [
                {"name": "archive", "type": "file", "path": str(tmp_path / "out" / "{{ id }}")}]),
            **extra}


def test_json_post_is_202_after_commit_and_flows(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_engine([rest_channel(tmp_path)], tmp_path) as engine:
            port = source_port(engine, "rest")
            body = json.dumps({"resourceType": "Patient", "id": "p1"}).encode()
            status, headers, answer = await asyncio.to_thread(post, port, "/api/in", body)
            assert status == 202
            receipt = json.loads(answer)
            assert receipt["status"] == "accepted"
            message_id = receipt["id"]
            assert headers["x-conduit-message-id"] == str(message_id)
            record = engine.store.get(message_id)  # durable before the 202
            assert record is not None and record.raw == body
            await wait_for(lambda: (tmp_path / "out" / str(message_id)).exists())
            assert (tmp_path / "out" / str(message_id)).read_bytes() == body
    asyncio.run(scenario())


def test_hl7_over_http_is_parsed_and_routed(tmp_path: Path) -> None:
    channel = rest_channel(tmp_path, data_type="hl7v2",
                           filter={"all": [{"field": "MSH-9.1", "equals": "ADT"}]},
                           destinations=[{"name": "archive", "type": "file",
                                          "path": str(tmp_path / "out" / "{{ msg['MSH-10'] }}")}])

    async def scenario() -> None:
        async with running_engine([channel], tmp_path) as engine:
            port = source_port(engine, "rest")
            status, _, _ = await asyncio.to_thread(post, port, "/api/in", ADT,
                                                   "x-application/hl7-v2+er7")
            assert status == 202
            await wait_for(lambda: (tmp_path / "out" / "MSG0001").exists())
            assert engine.store.search(control_id="MSG0001")[0].message_type == "ADT^A01"
            # Not HL7 on an HL7 channel: 400 problem, stored as ERROR.
            status, headers, answer = await asyncio.to_thread(post, port, "/api/in",
                                                              b"hello", "text/plain")
            assert status == 400
            assert headers["content-type"] == "application/problem+json"
            assert engine.store.get(json.loads(answer)["id"]).status == "ERROR"
    asyncio.run(scenario())


@pytest.mark.parametrize("path, method, content_type, body, status", [
    ("/api/in", "POST", "application/json", b'{"broken": ', 400),
    ("/api/in", "POST", "application/xml", b"<a><b></a>", 400),
    ("/api/in", "POST", "application/json", b"   ", 400),
    ("/api/in", "POST", "image/png", b"\x89PNG", 415),
    ("/api/in", "POST", "application/json", b'{"x": "' + b"a" * 5000 + b'"}', 413),
    ("/elsewhere", "POST", "application/json", b"{}", 404),
    ("/api/in", "DELETE", "application/json", b"{}", 405),
])
def test_bad_requests_get_problem_json(tmp_path: Path, path: str, method: str,
                                       content_type: str, body: bytes, status: int) -> None:
    async def scenario() -> None:
        async with running_engine([rest_channel(tmp_path)], tmp_path) as engine:
            port = source_port(engine, "rest")
            got, headers, answer = await asyncio.to_thread(post, port, path, body, content_type,
                                                           method)
            assert got == status
            assert headers["content-type"] == "application/problem+json"
            problem = json.loads(answer)
            assert problem["status"] == status and problem["title"]
            # The listener goes on.
            ok, _, _ = await asyncio.to_thread(post, port, "/api/in", b"{}")
            assert ok == 202
    asyncio.run(scenario())


def test_after_delivery_passes_the_receivers_response_back(tmp_path: Path) -> None:
    with HttpPeer(lambda seen: json_reply({"received": json.loads(seen.body)["n"]},
                                          201)) as peer:
        channel = rest_channel(
            tmp_path, source={"ack": "after-delivery"},
            destinations=[{"name": "api", "type": "http", "url": peer.url("/items"),
                           "headers": {"X-Message-Id": "{{ id }}"}}])

        async def scenario() -> None:
            async with running_engine([channel], tmp_path) as engine:
                port = source_port(engine, "rest")
                status, headers, answer = await asyncio.to_thread(post, port, "/api/in",
                                                                  b'{"n": 7}')
                assert status == 200
                assert json.loads(answer) == {"received": 7}
                message_id = int(headers["x-conduit-message-id"])
                assert peer.requests[0].headers["x-message-id"] == str(message_id)
                assert peer.requests[0].headers["content-type"] == "application/json"
                record = engine.store.get(message_id)
                assert record.deliveries[0].response == b'{"received": 7}'
        asyncio.run(scenario())


def test_destination_retries_5xx_and_429_then_stores_4xx_as_permanent(tmp_path: Path) -> None:
    calls: list[str] = []

    def handler(seen: Seen) -> Reply:
        key = json.loads(seen.body)["key"]
        calls.append(key)
        if key == "flaky" and calls.count("flaky") < 3:
            return json_reply({"error": "busy"}, 503 if calls.count("flaky") == 1 else 429)
        if key == "bad":
            return json_reply({"error": "no such patient"}, 404)
        return json_reply({"ok": key})

    with HttpPeer(handler) as peer:
        channel = rest_channel(tmp_path, destinations=[
            {"name": "api", "type": "http", "url": peer.url("/x/{{ body.key }}"),
             "method": "PUT", "retry": {"attempts": 4, "initial": "10ms", "max": "20ms"}}])

        async def scenario() -> None:
            async with running_engine([channel], tmp_path) as engine:
                port = source_port(engine, "rest")
                ids = {}
                for key in ("flaky", "bad"):
                    _, _, answer = await asyncio.to_thread(post, port, "/api/in",
                                                           json.dumps({"key": key}).encode())
                    ids[key] = json.loads(answer)["id"]
                await wait_for(lambda: all(engine.store.get(i).status in ("SENT", "ERROR")
                                           for i in ids.values()))
                flaky = engine.store.get(ids["flaky"]).deliveries[0]
                assert (flaky.status, flaky.attempts, flaky.response) == ("SENT", 3,
                                                                          b'{"ok": "flaky"}')
                bad = engine.store.get(ids["bad"]).deliveries[0]
                assert (bad.status, bad.attempts) == ("ERROR", 1)
                assert "404" in bad.error and bad.response == b'{"error": "no such patient"}'
                assert {s.path for s in peer.requests} == {"/x/flaky", "/x/bad"}
        asyncio.run(scenario())


def outbound(content: bytes, message_id: int = 1) -> Outbound:
    return Outbound(message_id=message_id, channel="c", destination="d", content=content)


def destination(**config: Any) -> HttpDestination:
    return HttpDestination(HttpDestinationConfig(name="d", type="http", **config),
                           ConnectorContext("c", Path(".")))


def test_templates_basic_and_bearer_auth_and_connection_errors() -> None:
    with HttpPeer(lambda seen: Reply(200, b"OK", "text/plain")) as peer:
        async def scenario() -> None:
            basic = destination(url=peer.url("/p/{{ msg['PID-3.1'] }}"),
                                body="{\"mrn\": \"{{ msg['PID-3.1'] }}\"}",
                                auth={"type": "basic", "username": "u", "password": "p w"})
            assert await basic.send(outbound(ADT)) == b"OK"
            bearer = destination(url=peer.url("/q"), auth={"type": "bearer", "token": "T0K"},
                                 content_type="application/hl7-v2")
            await bearer.send(outbound(ADT))
            first, second = peer.requests
            assert first.path == "/p/PAT123" and first.body == b'{"mrn": "PAT123"}'
            assert first.headers["authorization"] == "Basic dTpwIHc="
            assert second.headers["authorization"] == "Bearer T0K"
            assert second.headers["content-type"] == "application/hl7-v2"
            assert second.body == ADT
            broken = destination(url="{{ msg['PID-99'] }}{{ nothing }}")
            with pytest.raises(PermanentError, match="url template failed"):
                await broken.send(outbound(ADT))
            refused = destination(url="http://127.0.0.1:1/x", connect_timeout="1s")
            with pytest.raises(RetryableError, match="ConnectError"):
                await refused.send(outbound(b"{}"))
            for d in (basic, bearer, broken, refused):
                await d.close()
        asyncio.run(scenario())


def test_oauth2_token_is_cached_until_expiry_and_refreshed_on_401() -> None:
    tokens: list[str] = []
    revoked: set[str] = set()

    def handler(seen: Seen) -> Reply:
        if seen.path == "/token":
            assert seen.headers["authorization"].startswith("Basic ")
            assert b"grant_type=client_credentials" in seen.body
            assert b"scope=system%2FPatient.write" in seen.body
            tokens.append(f"tok{len(tokens)}")
            return json_reply({"access_token": tokens[-1], "token_type": "bearer",
                               "expires_in": 1})
        token = seen.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in tokens or token in revoked:
            return json_reply({"error": "invalid_token"}, 401)
        return json_reply({"token": token})

    with HttpPeer(handler) as peer:
        async def scenario() -> None:
            d = destination(url=peer.url("/api"), auth={
                "type": "oauth2", "token_url": peer.url("/token"), "client_id": "conduit",
                "client_secret": "s3cret", "scope": "system/Patient.write"})
            answers = await asyncio.gather(*[d.send(outbound(b"{}", i)) for i in range(5)])
            assert d.auth.fetches == 1  # five concurrent sends, one token
            assert {json.loads(a)["token"] for a in answers} == {"tok0"}
            time.sleep(0.6)  # past half the 1 s lifetime: fetched again
            assert json.loads(await d.send(outbound(b"{}")))["token"] == "tok1"
            revoked.add("tok1")  # revoked early: 401, fetched anew, retried once
            assert json.loads(await d.send(outbound(b"{}")))["token"] == "tok2"
            assert d.auth.fetches == 3
            await d.close()
        asyncio.run(scenario())


def test_https_listener_with_mutual_tls(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "certs")
    channel = rest_channel(tmp_path, source={"tls": {
        "cert": str(certs.server_cert), "key": str(certs.server_key),
        "client_ca": str(certs.ca), "require_client_cert": True}})

    def client_context(cert: Path | None, key: Path | None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(certs.ca))
        if cert and key:
            ctx.load_cert_chain(cert, key)
        return ctx

    async def scenario() -> None:
        async with running_engine([channel], tmp_path) as engine:
            port = source_port(engine, "rest")
            assert engine.runtimes["rest"].source.describe().startswith("https://")
            status, _, _ = await asyncio.to_thread(
                post, port, "/api/in", b"{}",
                context=client_context(certs.client_cert, certs.client_key))
            assert status == 202
            for cert, key in [(None, None), (certs.rogue_cert, certs.rogue_key)]:
                with pytest.raises((ssl.SSLError, ConnectionError)):
                    await asyncio.to_thread(post, port, "/api/in", b"{}",
                                            context=client_context(cert, key))
            assert sum(engine.store.counts()["rest"].values()) == 1
    asyncio.run(scenario())


def test_destination_with_custom_ca_and_client_certificate(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "certs")
    with HttpPeer(lambda seen: Reply(200, b"secure", "text/plain"),
                  server_context(certs, require_client=True)) as peer:
        async def scenario() -> None:
            good = destination(url=peer.url("/x"), tls={
                "ca": str(certs.ca), "cert": str(certs.client_cert),
                "key": str(certs.client_key)})
            assert await good.send(outbound(b"{}")) == b"secure"
            untrusted = destination(url=peer.url("/x"), connect_timeout="2s")  # system CAs
            with pytest.raises(RetryableError, match="CERTIFICATE_VERIFY_FAILED"):
                await untrusted.send(outbound(b"{}"))
            await good.close()
            await untrusted.close()
        asyncio.run(scenario())
