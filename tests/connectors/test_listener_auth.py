"""Inbound authentication on the REST, FHIR and SOAP listeners, with real clients: httpx for
REST and FHIR, zeep (with a requests session doing HTTP Basic) for SOAP."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import zeep
from zeep.transports import Transport

from conduit.connectors.listener_auth import hash_password
from tests.connectors.test_fhir import PATIENT, fhir_channel
from tests.connectors.test_http import rest_channel
from tests.connectors.test_soap import archive, soap_source
from tests.support import running_engine, source_port

TOKEN = "t0ken-from-the-environment-0123"


def test_rest_listener_basic_auth_with_an_argon2_hash(tmp_path: Path) -> None:
    users = [{"username": "lab", "password_hash": hash_password("s3cret pass")}]
    channel = rest_channel(tmp_path, source={"auth": {"type": "basic", "realm": "lab-results",
                                                      "users": users}})

    async def scenario() -> None:
        async with running_engine([channel], tmp_path) as engine, httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{source_port(engine, 'rest')}") as client:
            anonymous = await client.post("/api/in", json={"n": 1})
            assert anonymous.status_code == 401
            assert anonymous.headers["www-authenticate"] == \
                'Basic realm="lab-results", charset="UTF-8"'
            assert anonymous.headers["content-type"] == "application/problem+json"
            assert anonymous.json()["status"] == 401
            wrong = await client.post("/api/in", json={"n": 2}, auth=("lab", "guess"))
            assert wrong.status_code == 401
            unknown = await client.post("/api/in", json={"n": 3}, auth=("other", "s3cret pass"))
            assert unknown.status_code == 401
            for n in (4, 5):  # the second is answered from the verified-credentials cache
                ok = await client.post("/api/in", json={"n": n}, auth=("lab", "s3cret pass"))
                assert ok.status_code == 202, ok.text
            assert sum(engine.store.counts().get("rest", {}).values()) == 2  # refusals unstored
    asyncio.run(scenario())


def test_fhir_listener_bearer_token_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FHIR_INTAKE_TOKEN", TOKEN)
    channel = fhir_channel(tmp_path, auth={"type": "bearer", "tokens": ["${FHIR_INTAKE_TOKEN}"]})

    async def scenario() -> None:
        async with running_engine([channel], tmp_path) as engine:
            name = next(iter(engine.runtimes))
            base = f"http://127.0.0.1:{source_port(engine, name)}/fhir"
            async with httpx.AsyncClient(base_url=base) as client:
                assert (await client.get("/metadata")).status_code == 200  # stays public
                headers = {"Content-Type": "application/fhir+json"}
                refused = await client.post("/Patient", content=json.dumps(PATIENT),
                                            headers=headers)
                assert refused.status_code == 401
                assert refused.headers["www-authenticate"] == 'Bearer realm="conduit"'
                assert refused.json()["resourceType"] == "OperationOutcome"
                assert refused.json()["issue"][0]["code"] == "login"
                bad = await client.post("/Patient", content=json.dumps(PATIENT), headers={
                    **headers, "Authorization": "Bearer not-the-token"})
                assert bad.status_code == 401
                assert 'error="invalid_token"' in bad.headers["www-authenticate"]
                good = await client.post("/Patient", content=json.dumps(PATIENT), headers={
                    **headers, "Authorization": f"Bearer {TOKEN}"})
                assert good.status_code == 201, good.text
    asyncio.run(scenario())


def test_soap_listener_basic_auth_with_zeep(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOAP_SENDER_PASSWORD", "pa55word")
    auth = {"type": "basic", "users": [{"username": "legacy",
                                        "password": "${SOAP_SENDER_PASSWORD}"}]}
    channel = {"name": "soap-in", "source": soap_source(auth=auth),
               "destinations": archive(tmp_path)}

    async def scenario() -> None:
        async with running_engine([channel], tmp_path) as engine:
            wsdl = f"http://127.0.0.1:{source_port(engine, 'soap-in')}/soap/registration?wsdl"

            def call(session: requests.Session) -> Any:
                client = zeep.Client(wsdl, transport=Transport(session=session))
                return client.service.RegisterPatient(mrn="MRN-1", familyName="Test",
                                                      birthDate="1980-01-01")

            with requests.Session() as session:
                session.auth = ("legacy", "pa55word")
                answer = await asyncio.to_thread(call, session)
            assert answer.status == "accepted"
            with requests.Session() as session:
                session.auth = ("legacy", "wrong")
                with pytest.raises(requests.HTTPError, match="401"):
                    await asyncio.to_thread(call, session)
            envelope = (b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
                        b"<s:Body/></s:Envelope>")
            refused = await asyncio.to_thread(
                requests.post, wsdl.removesuffix("?wsdl"), data=envelope,
                headers={"Content-Type": "text/xml"}, timeout=10)
            assert refused.status_code == 401
            assert refused.headers["WWW-Authenticate"].startswith('Basic realm="conduit"')
            assert b"<faultcode>soap:Client</faultcode>" in refused.content
            assert b"authentication required" in refused.content
    asyncio.run(scenario())
