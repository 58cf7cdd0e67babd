"""Everything shipped works end to end: ``conduit run`` on a copy of ``channels/`` (only the
ports changed, so the test never meets a ``make run`` on this machine), each channel sent its
example from ``examples/messages/`` by an independent client (python-hl7 over MLLP, httpx for
REST and FHIR, zeep for SOAP), and every message the engine stored, the chained ones included
(downstream-demo, fhir-repository-demo, scheduling-demo), ends SENT or FILTERED."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import zeep
from hl7.client import MLLPClient
from lxml import etree

from conduit.engine.settings import load_settings
from conduit.store import Store
from tests.support import engine_process

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "messages"
# the ports the shipped channels listen on or send to (MLLP 2575-2590, HTTP/SOAP/FHIR 8081-8099)
SHIPPED_PORT = re.compile(r"(?<![\d.])(25[7-8]\d|2590|80[89]\d)(?!\d)")

MLLP = {  # channel: (its port as shipped, example files)
    "adt-to-file": (2575, ["adt_a01.hl7", "adt_a03.hl7", "oru_r01.hl7"]),
    "downstream-demo": (2576, ["adt_a03.hl7"]),
    "adt-to-fhir": (2580, ["adt_a01.hl7"]),
    "lab-codes-to-loinc": (2581, ["oru_r01.hl7"]),
    "adt-v23-upgrade": (2583, ["v2.3/adt_a04.hl7"]),
    "python-name-case": (2585, ["adt_a01.hl7"]),
    "adt-ordered-feed": (2586, ["adt_a01.hl7"]),
    "lab-results-by-patient": (2587, ["oru_r01.hl7"]),
}
HTTP = {  # channel: (port as shipped, path, content type, example)
    "rest-json-to-fhir-patient": (8082, "/api/registrations", "application/json",
                                  "registration.json"),
    "json-order-map": (8093, "/api/requests", "application/json", "appointment-request.json"),
    "xml-lab-order": (8092, "/orders", "application/xml", "lab-order.xml"),
    "fhir-observation-to-oru": (8090, "/fhir/Observation", "application/fhir+json",
                                "observation-weight.json"),
    "fhir-to-adt": (8091, "/fhir/Patient", "application/fhir+json", "patient.json"),
}
SOAP = {"soap-registration-to-adt": (8081, "/soap/registration", "register-patient.xml")}
ONLY_CHAINED = {"fhir-repository-demo", "scheduling-demo"}  # reached through the others
FINAL = {"SENT", "FILTERED"}


def copy_with_free_ports(tmp_path: Path) -> tuple[Path, dict[int, int]]:
    """``channels/`` copied whole (tables, scripts, XSLT), every shipped port mapped to a free
    one in listeners and destinations alike, so the chains still meet."""
    folder = tmp_path / "channels"
    shutil.copytree(ROOT / "channels", folder)
    files = {path: path.read_text(encoding="utf-8") for path in folder.glob("*.yaml")}
    shipped = sorted({int(p) for text in files.values() for p in SHIPPED_PORT.findall(text)})
    with contextlib.ExitStack() as held:  # held together, so no two are the same
        sockets = [held.enter_context(socket.socket()) for _ in shipped]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        ports = {old: int(sock.getsockname()[1]) for old, sock in zip(shipped, sockets,
                                                                          strict=True)}
    for path, text in files.items():
        path.write_text(SHIPPED_PORT.sub(lambda m: str(ports[int(m.group(1))]), text),
                        encoding="utf-8")
    return folder, ports


def soap_arguments(example: Path) -> dict[str, str]:
    """The example request's child elements as zeep keyword arguments."""
    root = etree.parse(str(example)).getroot()
    return {etree.QName(child).localname: child.text or "" for child in root
            if isinstance(child.tag, str)}


def settle(store: Store, timeout: float = 60.0) -> list[Any]:
    """Every stored message, once none is still on its way (or the time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        records = store.search(limit=1000)
        if (records and all(r.status in FINAL | {"ERROR"} for r in records)) \
                or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def expected_ack(path: Path) -> str:
    """``CA`` for an example asking for enhanced acknowledgement with a commit ACK only (MSH-15
    ``AL``, MSH-16 ``NE``: the ADT samples), else ``AA``."""
    msh = path.read_bytes().split(b"\r", 1)[0].decode().split("|")
    return "CA" if msh[14:16] == ["AL", "NE"] else "AA"


def test_every_shipped_channel_delivers_its_example_to_a_receiver_the_engine_runs(
        tmp_path: Path) -> None:
    channels, ports = copy_with_free_ports(tmp_path)
    shipped = {p.stem for p in (ROOT / "channels").glob("*.yaml")
               if not p.name.endswith(".test.yaml")}
    assert shipped == set(MLLP) | set(HTTP) | set(SOAP) | ONLY_CHAINED, (
        "a shipped channel is missing from this test (and from the README's table)")
    data = tmp_path / "data"
    answers: dict[str, list[str]] = {}
    with engine_process(channels, data) as engine:
        for name, (port, files) in MLLP.items():
            with MLLPClient("127.0.0.1", ports[port]) as client:
                for file in files:
                    ack = client.send_message((EXAMPLES / file).read_bytes())
                    answers.setdefault(name, []).append(
                        ack.decode().split("\r")[1].split("|")[1])
        with httpx.Client(timeout=30) as client:
            for name, (port, path, media, file) in HTTP.items():
                response = client.post(f"http://127.0.0.1:{ports[port]}{path}",
                                       content=(EXAMPLES / file).read_bytes(),
                                       headers={"Content-Type": media})
                answers[name] = [str(response.status_code)]
            # not a scheduling request: scheduling-demo's JSON filter stops it (stored FILTERED)
            stray = client.post(f"http://127.0.0.1:{ports[2589]}/requests", json={"hello": 1})
            answers["scheduling-demo"] = [str(stray.status_code)]
        for name, (port, path, file) in SOAP.items():
            service = zeep.Client(f"http://127.0.0.1:{ports[port]}{path}?wsdl").service
            answer = service.RegisterPatient(**soap_arguments(EXAMPLES / file))
            answers[name] = [answer.ackCode]
        store = Store(load_settings(None, data_dir=data).store)
        try:
            records = settle(store)
            unfinished = [(r.channel, r.id, r.status, r.error,
                           [(d.destination, d.status, d.error)
                            for d in store.get(r.id).deliveries])  # type: ignore[union-attr]
                          for r in records if r.status not in FINAL]
        finally:
            store.engine.dispose()
        output = "".join(engine.output)

    assert answers == {
        **{name: [expected_ack(EXAMPLES / f) for f in files] for name, (_, files) in MLLP.items()},
        "rest-json-to-fhir-patient": ["202"], "json-order-map": ["202"],
        "xml-lab-order": ["202"], "fhir-observation-to-oru": ["201"], "fhir-to-adt": ["201"],
        "soap-registration-to-adt": ["AA"], "scheduling-demo": ["202"],
    }, output
    assert not unfinished, f"{unfinished}\n{output}"
    by_channel: dict[str, list[str]] = {}
    for record in records:
        by_channel.setdefault(record.channel, []).append(record.status)
    assert set(by_channel) == shipped, by_channel
    assert by_channel["adt-to-file"].count("FILTERED") == 1  # the ORU, acknowledged all the same
    assert sorted(by_channel["scheduling-demo"]) == ["FILTERED", "SENT"]
    # the chains: what each stand-in received
    assert len(list((data / "fhir").glob("*.json"))) == 2  # adt-to-fhir, rest-json-to-fhir
    assert len(list((data / "scheduling").glob("*.json"))) == 1
    assert by_channel["downstream-demo"].count("SENT") >= 10
