"""The FHIR listener with fhirpy and fhirclient (SMART on FHIR) as independent clients, and the
FHIR destination against a stdlib HTTP server playing a FHIR server."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome

from conduit.connectors.base import ConnectorContext
from conduit.connectors.fhir import FhirDestination, FhirDestinationConfig
from conduit.core.errors import PermanentError, RetryableError
from conduit.core.protocols import Outbound
from tests.connectors.peers import HttpPeer, Reply, Seen, json_reply
from tests.support import running_engine, source_port, wait_for

PATIENT = {"resourceType": "Patient",
           "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN-1"}],
           "name": [{"family": "Testpatient", "given": ["Alpha"]}],
           "birthDate": "1980-01-01", "gender": "female"}


def fhir_channel(tmp_path: Path, **source: Any) -> dict[str, Any]:
    destinations = source.pop("destinations", None)
    return {"name": "fhir-in",
            "source": {"type": "fhir", "host": "127.0.0.1", "port": 0, "base_path": "/fhir",
                       **source},
            "destinations": destinations or [
                {"name": "archive", "type": "file",
                 "path": str(tmp_path / "out" / "{{ id }}.json")}]}


def test_fhirpy_create_update_transaction_and_fhirclient_metadata(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_engine([fhir_channel(tmp_path)], tmp_path) as engine:
            base = f"http://127.0.0.1:{source_port(engine, 'fhir-in')}/fhir"

            def client_work() -> dict[str, Any]:
                from fhirclient import client as smart_client

                smart = smart_client.FHIRClient(settings={"app_id": "conduit-test",
                                                          "api_base": base})
                smart.prepare()  # reads and parses GET /metadata with its R4 models
                statement = smart.server.capabilityStatement
                fhir = SyncFHIRClient(base)
                patient = fhir.resource("Patient", **PATIENT)
                patient.save()  # POST /Patient
                created_id = patient.id
                patient["gender"] = "other"
                patient.save()  # PUT /Patient/{id}
                bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
                    {"resource": PATIENT, "request": {"method": "POST", "url": "Patient"}},
                    {"resource": {"resourceType": "Observation", "status": "final",
                                  "code": {"text": "weight"}},
                     "request": {"method": "POST", "url": "Observation"}}]}
                answer = fhir.execute("", method="post", data=bundle)
                return {"version": statement.fhirVersion,
                        "interactions": [i.code for i in statement.rest[0].interaction],
                        "created_id": created_id, "answer": answer}

            got = await asyncio.to_thread(client_work)
            assert got["version"] == "4.0.1"
            assert got["interactions"] == ["transaction", "batch"]
            assert got["created_id"].startswith("conduit-")
            assert got["answer"]["type"] == "transaction-response"
            assert [e["response"]["status"] for e in got["answer"]["entry"]] == [
                "201 Created", "201 Created"]
            records = engine.store.search(channel="fhir-in")
            assert sorted(r.message_type for r in records) == [
                "Bundle/transaction", "Patient", "Patient"]
            updated = [r for r in records if r.control_id == got["created_id"]]
            assert len(updated) == 1  # the PUT carried the id
            assert json.loads(engine.store.get(updated[0].id).raw)["gender"] == "other"
            await wait_for(lambda: len(list((tmp_path / "out").glob("*.json"))) == 3)
    asyncio.run(scenario())


def test_invalid_resources_get_an_operation_outcome_naming_each_path(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_engine([fhir_channel(tmp_path, resources=["Patient"])],
                                  tmp_path) as engine:
            base = f"http://127.0.0.1:{source_port(engine, 'fhir-in')}/fhir"

            def invalid() -> dict[str, Any]:
                fhir = SyncFHIRClient(base)
                bad = fhir.resource("Patient", name=[{"family": 5, "given": "Alpha"}],
                                    birthDate="01/02/1980", shoeSize=42)
                with pytest.raises(OperationOutcome) as caught:
                    bad.save()
                return caught.value.resource

            issues = (await asyncio.to_thread(invalid))["issue"]
            paths = sorted(i["expression"][0] for i in issues)
            assert paths == ["Patient.birthDate", "Patient.name[0].family",
                             "Patient.name[0].given", "Patient.shoeSize"]
            assert all(i["severity"] == "error" and i["diagnostics"] for i in issues)
            errors = engine.store.search(channel="fhir-in", status="ERROR")
            assert len(errors) == 1 and "Patient.birthDate" in errors[0].error

            import httpx
            async with httpx.AsyncClient(base_url=base) as client:
                wrong_type = await client.post("/Observation", json={"resourceType": "Patient"})
                mismatch = await client.post("/Patient", json={"resourceType": "Observation"})
                not_json = await client.post("/Patient", content=b"{",
                                             headers={"Content-Type": "application/fhir+json"})
                wrong_id = await client.put("/Patient/a", json={**PATIENT, "id": "b"})
                not_bundle = await client.post("/", json=PATIENT)
            assert wrong_type.status_code == 404
            assert [r.status_code for r in (mismatch, not_json, wrong_id, not_bundle)] == [
                400, 400, 400, 400]
            for response in (wrong_type, mismatch, not_json, wrong_id, not_bundle):
                assert response.headers["content-type"] == "application/fhir+json"
                assert response.json()["resourceType"] == "OperationOutcome"
    asyncio.run(scenario())


def fhir_server(seen_log: list[Seen]) -> Any:
    """A FHIR server stand-in: 201 for create, 200 for update/transaction, 422 with an
    OperationOutcome for a Patient without a name, 503 for 'busy'."""
    def handler(seen: Seen) -> Reply:
        seen_log.append(seen)
        body = json.loads(seen.body) if seen.body else {}
        if body.get("id") == "busy":
            return json_reply({"resourceType": "OperationOutcome", "issue": []}, 503)
        if body.get("resourceType") == "Patient" and not body.get("name"):
            return json_reply({"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "required", "expression": ["Patient.name"]}]}, 422)
        if body.get("resourceType") == "Bundle":
            return json_reply({"resourceType": "Bundle", "type": "transaction-response"})
        return json_reply({**body, "id": body.get("id") or "srv-1"},
                          201 if seen.method == "POST" else 200)
    return handler


def fhir_destination(url: str, **config: Any) -> FhirDestination:
    return FhirDestination(FhirDestinationConfig(name="repo", type="fhir", url=url, **config),
                           ConnectorContext("c", Path(".")))


def out(resource: dict[str, Any]) -> Outbound:
    return Outbound(1, "c", "repo", json.dumps(resource).encode())


def test_destination_operations_map_to_fhir_rest() -> None:
    seen: list[Seen] = []
    with HttpPeer(fhir_server(seen)) as peer:
        async def scenario() -> None:
            base = peer.url("/r4")
            auto = fhir_destination(base)
            await auto.send(out(PATIENT))
            await auto.send(out({**PATIENT, "id": "p 7"}))
            await auto.send(out({"resourceType": "Bundle", "type": "transaction", "entry": []}))
            cond_create = fhir_destination(base, operation="conditional-create")
            await cond_create.send(out(PATIENT))
            cond_update = fhir_destination(base, operation="conditional-update",
                                           identifier_system="urn:oid:1.2.3")
            await cond_update.send(out(PATIENT))
            requests = [(s.method, s.path) for s in seen]
            assert requests == [("POST", "/r4/Patient"), ("PUT", "/r4/Patient/p%207"),
                                ("POST", "/r4"), ("POST", "/r4/Patient"),
                                ("PUT", "/r4/Patient?identifier=urn%3Aoid%3A1.2.3%7CMRN-1")]
            assert seen[3].headers["if-none-exist"] == "identifier=urn%3Aoid%3A1.2.3%7CMRN-1"
            assert seen[0].headers["content-type"] == "application/fhir+json"
            assert seen[0].headers["prefer"] == "return=representation"

            with pytest.raises(PermanentError, match="422") as caught:
                await auto.send(out({"resourceType": "Patient"}))
            stored = json.loads(caught.value.response or b"{}")
            assert stored["issue"][0]["expression"] == ["Patient.name"]  # kept for the store
            with pytest.raises(RetryableError, match="503"):
                await auto.send(out({**PATIENT, "id": "busy"}))
            with pytest.raises(PermanentError, match="needs an identifier with system"):
                await fhir_destination(base, operation="conditional-update",
                                       identifier_system="urn:other").send(out(PATIENT))
            with pytest.raises(PermanentError, match="transaction needs a Bundle"):
                await fhir_destination(base, operation="transaction").send(out(PATIENT))
            for d in (auto, cond_create, cond_update):
                await d.close()
        asyncio.run(scenario())


def test_smart_backend_services_private_key_jwt(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "private.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    assertions: list[dict[str, Any]] = []
    seen: list[Seen] = []

    def handler(seen_request: Seen) -> Reply:
        if seen_request.path == "/auth/token":
            form = dict(urllib.parse.parse_qsl(seen_request.body.decode()))
            assert form["grant_type"] == "client_credentials"
            assert form["client_assertion_type"] == \
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            head, claims, signature = form["client_assertion"].split(".")
            pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
            key.public_key().verify(base64.urlsafe_b64decode(pad(signature)),
                                    f"{head}.{claims}".encode(), padding.PKCS1v15(),
                                    hashes.SHA384())  # raises if the signature is wrong
            assertions.append({"header": json.loads(base64.urlsafe_b64decode(pad(head))),
                               "claims": json.loads(base64.urlsafe_b64decode(pad(claims))),
                               "scope": form["scope"]})
            return json_reply({"access_token": "smart-token", "expires_in": 300})
        return fhir_server(seen)(seen_request)

    with HttpPeer(handler) as peer:
        async def scenario() -> None:
            d = fhir_destination(peer.url("/r4"), auth={
                "type": "oauth2", "token_url": peer.url("/auth/token"), "client_id": "conduit",
                "client_assertion": "private_key_jwt", "private_key": str(tmp_path / "private.pem"),
                "key_id": "k1", "scope": "system/Patient.write"})
            await d.send(out(PATIENT))
            await d.send(out(PATIENT))
            await d.close()
        asyncio.run(scenario())
    assert len(assertions) == 1  # cached
    claims = assertions[0]["claims"]
    assert assertions[0]["header"] == {"alg": "RS384", "typ": "JWT", "kid": "k1"}
    assert claims["iss"] == claims["sub"] == "conduit"
    assert claims["aud"].endswith("/auth/token") and claims["exp"] - claims["iat"] == 300
    assert [s.headers["authorization"] for s in seen] == ["Bearer smart-token"] * 2


def test_fhir_in_fhir_out_after_delivery(tmp_path: Path) -> None:
    seen: list[Seen] = []
    with HttpPeer(fhir_server(seen)) as peer:
        channel = fhir_channel(tmp_path, ack="after-delivery", destinations=[
            {"name": "repo", "type": "fhir", "url": peer.url("/r4"),
             "retry": {"attempts": 1}}])

        async def scenario() -> None:
            async with running_engine([channel], tmp_path) as engine:
                base = f"http://127.0.0.1:{source_port(engine, 'fhir-in')}/fhir"

                def create() -> Any:
                    patient = SyncFHIRClient(base).resource("Patient", **PATIENT)
                    patient.save()
                    return patient.id

                assert await asyncio.to_thread(create) == "srv-1"  # the repository's id
                import httpx
                async with httpx.AsyncClient() as client:
                    refused = await client.post(f"{base}/Patient", json={
                        "resourceType": "Patient", "gender": "male"})
                assert refused.status_code == 502
                assert refused.json()["issue"][0]["expression"] == ["Patient.name"]
                record = engine.store.get(int(refused.headers["x-conduit-message-id"]))
                assert record.status == "ERROR"
                assert b"Patient.name" in record.deliveries[0].response
        asyncio.run(scenario())


def test_conditional_update_by_identifier_is_accepted_when_the_resource_carries_it(
        tmp_path: Path) -> None:
    """``PUT [type]?identifier=system|value`` (what the fhir destination's conditional-update
    sends): accepted when the resource holds that identifier, refused when it does not (the
    URL and the body would name different patients)."""
    async def scenario() -> None:
        async with running_engine([fhir_channel(tmp_path)], tmp_path) as engine:
            port = source_port(engine, "fhir-in")
            destination = fhir_destination(f"http://127.0.0.1:{port}/fhir",
                                           operation="conditional-update",
                                           identifier_system="urn:oid:1.2.3")
            try:
                answer = json.loads(await destination.send(out(PATIENT)))
            finally:
                await destination.close()
            assert answer["resourceType"] == "Patient" and answer["id"].startswith("conduit-")
            import httpx
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/fhir") as client:
                other = await client.put("/Patient?identifier=urn%3Aoid%3A1.2.3%7CMRN-2",
                                         json=PATIENT)
                unknown = await client.put("/Patient?name=Testpatient", json=PATIENT)
                bare = await client.put("/Patient?identifier=MRN-1", json=PATIENT)
                statement = (await client.get("/metadata")).json()
            assert other.status_code == 400
            assert "identifier" in other.json()["issue"][0]["diagnostics"]
            assert unknown.status_code == 400
            assert bare.status_code == 201
            assert statement["rest"][0]["resource"][0]["conditionalUpdate"] is True
            records = engine.store.search(channel="fhir-in")
            statuses = [r.status for r in records]
            assert len(statuses) == 4 and statuses.count("ERROR") == 2  # refused ones are kept
    asyncio.run(scenario())
