"""SOAP: zeep calls the listener through the WSDL it serves (SOAP 1.1 and 1.2); the SOAP
destination calls a spyne service (a subprocess) with WS-Security UsernameToken."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import zeep
from lxml import etree

from conduit.connectors.base import ConnectorContext
from conduit.connectors.soap import SoapDestination, SoapDestinationConfig
from conduit.core.errors import PermanentError, RetryableError
from conduit.core.protocols import Outbound
from tests.support import MllpReceiver, running_engine, source_port, wait_for

NS = "urn:example:registration"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"


def soap_source(**extra: Any) -> dict[str, Any]:
    return {"type": "soap", "host": "127.0.0.1", "port": 0, "path": "/soap/registration",
            "service": "RegistrationService", "namespace": NS,
            "operations": [{"name": "RegisterPatient", "input": [
                {"name": "mrn"}, {"name": "familyName"}, {"name": "givenName", "required": False},
                {"name": "birthDate", "type": "date"}]}], **extra}


def archive(tmp_path: Path) -> list[dict[str, Any]]:
    return [{"name": "archive", "type": "file",
             "path": str(tmp_path / "out" / "{{ id }}.xml")}]


def test_zeep_calls_the_listener_over_soap11_and_soap12(tmp_path: Path) -> None:
    channel = {"name": "soap-in", "source": soap_source(), "destinations": archive(tmp_path)}

    async def scenario() -> None:
        async with running_engine([channel], tmp_path) as engine:
            wsdl = f"http://127.0.0.1:{source_port(engine, 'soap-in')}/soap/registration?wsdl"

            def call() -> list[Any]:
                client = zeep.Client(wsdl)
                first = client.service.RegisterPatient(mrn="MRN-1", familyName="Testpatient",
                                                       birthDate="1980-01-01")
                soap12 = client.bind("RegistrationService", "RegistrationServiceSoap12")
                second = soap12.RegisterPatient(mrn="MRN-2", familyName="Other",
                                                givenName="Beta", birthDate="1990-02-03")
                return [first, second]

            first, second = await asyncio.to_thread(call)
            assert first.status == "accepted" and second.status == "accepted"
            records = {r.id: r for r in engine.store.search(channel="soap-in")}
            assert set(records) == {int(first.messageId), int(second.messageId)}
            stored = engine.store.get(int(second.messageId))
            element = etree.fromstring(stored.raw)
            assert element.tag == f"{{{NS}}}RegisterPatient"
            assert element.findtext(f"{{{NS}}}givenName") == "Beta"
            assert records[int(first.messageId)].message_type == "RegisterPatient"
            await wait_for(lambda: len(list((tmp_path / "out").glob("*.xml"))) == 2)
    asyncio.run(scenario())


def envelope(body: str, version: str = "1.1") -> bytes:
    ns = SOAP12 if version == "1.2" else SOAP11
    return (f'<s:Envelope xmlns:s="{ns}" xmlns:r="{NS}"><s:Body>{body}</s:Body></s:Envelope>'
            ).encode()


@pytest.mark.parametrize("body, version, status, reason", [
    (b"<not-xml", "1.1", 500, "not well-formed XML"),
    (envelope("<r:RegisterPatient><r:mrn>1</r:mrn></r:RegisterPatient>"), "1.1", 500,
     "part familyName is missing"),
    (envelope("<r:RegisterPatient><r:mrn>1</r:mrn><r:familyName>X</r:familyName>"
              "<r:birthDate>yesterday</r:birthDate></r:RegisterPatient>"), "1.1", 500,
     "part birthDate: not a valid date"),
    (envelope("<r:DeletePatient/>"), "1.1", 500, "unknown operation"),
    (envelope("<r:RegisterPatient><r:mrn>1</r:mrn></r:RegisterPatient>", "1.2"), "1.2", 400,
     "part familyName is missing"),
])
def test_bad_requests_get_soap_faults(tmp_path: Path, body: bytes, version: str, status: int,
                                      reason: str) -> None:
    channel = {"name": "soap-in", "source": soap_source(), "destinations": archive(tmp_path)}

    async def scenario() -> None:
        async with running_engine([channel], tmp_path) as engine:
            url = f"http://127.0.0.1:{source_port(engine, 'soap-in')}/soap/registration"
            content_type = "application/soap+xml" if version == "1.2" else "text/xml"
            async with httpx.AsyncClient() as client:
                response = await client.post(url, content=body, headers={
                    "Content-Type": content_type, "SOAPAction": f'"{NS}/RegisterPatient"'})
            assert response.status_code == status
            fault = etree.fromstring(response.content)
            ns = SOAP12 if version == "1.2" else SOAP11
            assert fault.find(f".//{{{ns}}}Fault") is not None
            text = "".join(fault.itertext())
            assert reason in text
            assert ("Sender" if version == "1.2" else "Client") in text
            assert not [r for r in engine.store.search(channel="soap-in")
                        if r.status != "ERROR"]
    asyncio.run(scenario())


def test_soap_request_becomes_adt_over_mllp_with_the_ack_in_the_response(
        tmp_path: Path) -> None:
    template = ("MSH|^~\\&|CONDUIT|HOSP|ADT|HOSP|20260101000000||ADT^A04^ADT_A01|SOAP{{ 1000 }}|"
                "P|2.5\n"
                "PID|1||{{ vars.body.mrn }}^^^HOSP^MR||{{ vars.body.familyName | hl7_escape }}"
                "^{{ vars.body['givenName'] if vars.body.all('givenName') else '' }}\n")
    with MllpReceiver() as downstream:
        source = soap_source(ack="after-delivery")
        source["operations"][0]["output"] = [
            {"name": "messageId", "value": "{{ id }}"},
            {"name": "ackCode", "value": "{{ msg['MSA-1'] }}"}]
        channel = {"name": "soap-adt", "source": source, "transform": [
            {"template": {"body": template}}],
            "destinations": [{"name": "adt", "type": "mllp", "host": "127.0.0.1",
                              "port": downstream.port}]}

        async def scenario() -> None:
            async with running_engine([channel], tmp_path) as engine:
                wsdl = (f"http://127.0.0.1:{source_port(engine, 'soap-adt')}"
                        "/soap/registration?wsdl")
                answer = await asyncio.to_thread(
                    lambda: zeep.Client(wsdl).service.RegisterPatient(
                        mrn="MRN-9", familyName="O|Brien", birthDate="1970-05-06"))
                assert answer.ackCode == "AA"
                [sent] = downstream.messages
                assert sent.split(b"\r")[1] == b"PID|1||MRN-9^^^HOSP^MR||O\\F\\Brien^"
        asyncio.run(scenario())


@pytest.fixture(scope="module")
def spyne_wsdl() -> Iterator[str]:
    script = Path(__file__).with_name("spyne_service.py")
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    try:
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}/?wsdl"
    finally:
        process.stdout.close()
        process.terminate()
        process.wait(10)


def soap_destination(wsdl: str, **config: Any) -> SoapDestination:
    return SoapDestination(SoapDestinationConfig(name="results", type="soap", wsdl=wsdl,
                                                 operation="SubmitResult", **config),
                           ConnectorContext("c", Path(".")))


ORU = (b"MSH|^~\\&|LAB|HOSP|EHR|HOSP|20260101||ORU^R01|R1|P|2.5\r"
       b"PID|1||{pid}^^^HOSP^MR\rOBX|1|NM|WT^Weight||72|kg\r")


def test_soap_destination_calls_spyne_with_ws_security(spyne_wsdl: str) -> None:
    arguments = {"patientId": "{{ msg['PID-3.1'] }}", "value": "{{ msg['OBX-5'] }}"}

    async def scenario() -> None:
        good = soap_destination(spyne_wsdl, arguments=arguments, username="conduit",
                                password="s3cret")
        result = await good.send(Outbound(1, "c", "results", ORU.replace(b"{pid}", b"P1")))
        assert result == b'"stored P1=72"'
        with pytest.raises(RetryableError, match="database down"):
            await good.send(Outbound(2, "c", "results", ORU.replace(b"{pid}", b"down")))
        wrong = soap_destination(spyne_wsdl, arguments=arguments, username="conduit",
                                 password="guess")
        with pytest.raises(PermanentError, match="bad credentials"):
            await wrong.send(Outbound(3, "c", "results", ORU.replace(b"{pid}", b"P3")))
        anonymous = soap_destination(spyne_wsdl, arguments=arguments)
        with pytest.raises(PermanentError, match="bad credentials"):
            await anonymous.send(Outbound(4, "c", "results", ORU.replace(b"{pid}", b"P4")))
        not_a_number = soap_destination(spyne_wsdl, username="conduit", password="s3cret",
                                        arguments={"patientId": "P5", "value": "heavy"})
        with pytest.raises(PermanentError):
            await not_a_number.send(Outbound(5, "c", "results", ORU.replace(b"{pid}", b"P5")))
        unreachable = soap_destination("http://127.0.0.1:1/?wsdl", arguments=arguments)
        with pytest.raises(RetryableError, match="cannot load WSDL"):
            await unreachable.send(Outbound(6, "c", "results", ORU))
        for d in (good, wrong, anonymous, not_a_number, unreachable):
            await d.close()
    asyncio.run(scenario())
