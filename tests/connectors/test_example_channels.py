"""The example channels in channels/ deployed for real (only ports changed), end to end with
independent peers: zeep -> SOAP -> MLLP, http.client JSON -> REST -> FHIR server, fhirpy ->
FHIR -> MLLP."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import yaml
import zeep
from fhirpy import SyncFHIRClient

from tests.connectors.peers import HttpPeer, Seen, json_reply
from tests.support import MllpReceiver, running_engine, source_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


def example(name: str, **destination: Any) -> dict[str, Any]:
    channel: dict[str, Any] = yaml.safe_load((ROOT / "channels" / f"{name}.yaml").read_text())
    channel["source"].update(host="127.0.0.1", port=0)
    channel["destinations"][0].update(destination)
    channel["destinations"][0]["retry"] = {"attempts": 1}
    return channel


def test_soap_registration_becomes_adt_a04_over_mllp(tmp_path: Path) -> None:
    with MllpReceiver() as adt_system:
        channel = example("soap-registration-to-adt", host="127.0.0.1", port=adt_system.port)

        async def scenario() -> None:
            async with running_engine([channel], tmp_path) as engine:
                port = source_port(engine, "soap-registration-to-adt")
                wsdl = f"http://127.0.0.1:{port}/soap/registration?wsdl"
                answer = await asyncio.to_thread(lambda: zeep.Client(wsdl).service.RegisterPatient(
                    requestId="REQ-1", eventTime="2026-01-05T08:30:00", mrn="100001",
                    familyName="Doe", givenName="Jane", birthDate="1980-01-01", sex="F"))
                assert answer.ackCode == "AA"
                [sent] = adt_system.messages
                segments = sent.split(b"\r")
                assert segments[0].split(b"|")[8:10] == [b"ADT^A04^ADT_A01", b"REQ-1"]
                assert segments[2].startswith(b"PID|1||100001^^^HOSP^MR||Doe^Jane||19800101|F")
        asyncio.run(scenario())


def test_rest_json_becomes_a_fhir_patient_by_conditional_update(tmp_path: Path) -> None:
    seen: list[Seen] = []

    def repository(request: Seen) -> Any:
        seen.append(request)
        return json_reply({**json.loads(request.body), "id": "pat-1"}, 201)

    with HttpPeer(repository) as fhir_repo:
        channel = example("rest-json-to-fhir-patient", url=fhir_repo.url("/fhir"))

        async def scenario() -> None:
            async with running_engine([channel], tmp_path) as engine:
                port = source_port(engine, "rest-json-to-fhir-patient")
                body = (ROOT / "examples" / "messages" / "registration.json").read_bytes()
                async with httpx.AsyncClient() as client:
                    answer = await client.post(f"http://127.0.0.1:{port}/api/registrations",
                                               content=body,
                                               headers={"Content-Type": "application/json"})
                assert answer.status_code == 202
                await wait_for(lambda: len(seen) == 1)
                request = seen[0]
                assert (request.method, request.path) == (
                    "PUT", "/fhir/Patient?identifier=urn%3Aexample%3Ahosp%3Amrn%7C100001")
                patient = json.loads(request.body)
                from fhir.resources.R4B.patient import Patient

                Patient.model_validate(patient)  # a valid FHIR Patient
                assert patient["name"] == [{"family": "Doe", "given": ["Jane", "Q"]}]
                await wait_for(lambda: engine.store.get(answer.json()["id"]).status == "SENT")
        asyncio.run(scenario())


def test_fhir_observation_becomes_oru_over_mllp(tmp_path: Path) -> None:
    with MllpReceiver() as ehr:
        channel = example("fhir-observation-to-oru", host="127.0.0.1", port=ehr.port)

        async def scenario() -> None:
            async with running_engine([channel], tmp_path) as engine:
                base = f"http://127.0.0.1:{source_port(engine, 'fhir-observation-to-oru')}/fhir"
                observation = json.loads(
                    (ROOT / "examples" / "messages" / "observation-weight.json").read_text())
                await asyncio.to_thread(
                    lambda: SyncFHIRClient(base).resource("Observation", **observation).save())
                await wait_for(lambda: len(ehr.messages) == 1)
                obx = next(s for s in ehr.messages[0].split(b"\r") if s.startswith(b"OBX"))
                assert obx.split(b"|")[2:7] == [b"NM", b"29463-7^Body weight^LN", b"", b"72.5",
                                                b"kg^kg^UCUM"]
        asyncio.run(scenario())
