"""Identity across senders (issue 14 item 1): systems from the authority, else the sender.

MRN 12345 from two facilities must be two Patients with two systems, never one overwriting the
other; the same message sent again must give the same ids. The rule is conduit/fhir/ids.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from conduit.core.errors import MessageError
from conduit.fhir import ConvertOptions, convert
from conduit.fhir.ids import IdentifierSystems
from conduit.hl7.message import Message
from tests.fhir.test_convert import CORPUS_MESSAGES

Json = dict[str, Any]


def _oru(facility: str, application: str = "LIS", pid3: str = "12345^^^^MR",
         orc: str = "ORC|RE|ORD7|FIL7\r", obr: str = "OBR|1|ORD7|FIL7|GLU^Glucose^LN\r",
         pv1: str = "PV1|1|O|||||||||||||||||V100\r", control: str = "MSG1") -> str:
    return (f"MSH|^~\\&|{application}|{facility}|EHR|HOSP|20240102040506||ORU^R01^ORU_R01|"
            f"{control}|P|2.5.1\r"
            f"PID|1||{pid3}||DOE^JANE||19800101|F\r"
            f"{pv1}{orc}{obr}"
            "OBX|1|NM|GLU^Glucose^LN||5.4|mmol/L|3.9-5.8|N|||F\r")


def _bundle(text: str, **options: Any) -> Json:
    return convert(Message.parse(text), ConvertOptions(timezone="UTC", **options))


def resources(bundle: Json, kind: str) -> list[Json]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def one(bundle: Json, kind: str) -> Json:
    found = resources(bundle, kind)
    assert len(found) == 1, f"{len(found)} {kind}"
    return found[0]


def test_same_mrn_from_two_senders_is_two_patients_and_two_observations() -> None:
    a, b = _bundle(_oru("FACA")), _bundle(_oru("FACB"))
    pa, pb = one(a, "Patient"), one(b, "Patient")
    assert pa["id"] != pb["id"]
    assert pa["identifier"][0] == {
        "value": "12345", "system": "urn:conduit:sender:FACA:LIS",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                             "code": "MR"}]}}
    assert pb["identifier"][0]["system"] == "urn:conduit:sender:FACB:LIS"
    for kind in ("Observation", "Encounter", "ServiceRequest", "DiagnosticReport"):
        assert one(a, kind)["id"] != one(b, kind)["id"], kind
    # also two applications of one facility number their patients independently
    assert one(_bundle(_oru("FACA", "ADT")), "Patient")["id"] != pa["id"]


def test_the_same_message_resent_gives_the_same_ids() -> None:
    first, again = _bundle(_oru("FACA")), _bundle(_oru("FACA"))
    assert [e["fullUrl"] for e in first["entry"]] == [e["fullUrl"] for e in again["entry"]]
    # a later message about the same patient and order lands on the same resources
    later = _bundle(_oru("FACA", control="MSG2"))
    for kind in ("Patient", "Observation", "Encounter", "ServiceRequest", "DiagnosticReport"):
        assert one(later, kind)["id"] == one(first, kind)["id"], kind


def test_bare_namespace_is_qualified_by_the_sender_and_kept_as_assigner() -> None:
    ident = one(_bundle(_oru("FAC A/1", pid3="12345^^^HOSPA^MR")), "Patient")["identifier"][0]
    assert ident["system"] == "urn:conduit:sender:FAC%20A%2F1:LIS:HOSPA"
    assert ident["assigner"] == {"display": "HOSPA"}
    other = one(_bundle(_oru("FACB", pid3="12345^^^HOSPA^MR")), "Patient")
    assert other["identifier"][0]["system"] == "urn:conduit:sender:FACB:LIS:HOSPA"


def test_universal_authority_is_the_system_and_the_same_for_every_sender() -> None:
    pid3 = "12345^^^HOSPA&1.2.840.114350.1.13&ISO^MR"
    a = one(_bundle(_oru("FACA", pid3=pid3)), "Patient")
    b = one(_bundle(_oru("FACB", pid3=pid3)), "Patient")
    assert a["identifier"][0]["system"] == "urn:oid:1.2.840.114350.1.13"
    assert a["id"] == b["id"]


def test_identifier_systems_maps_authorities_and_facilities() -> None:
    systems = {"authorities": {"HOSPA": "https://hospa.example.org/fhir/sid/mrn"},
               "facilities": {"FACB": "https://facb.example.org/fhir/sid/ids"}}
    a = one(_bundle(_oru("FACA", pid3="12345^^^HOSPA^MR"), identifier_systems=systems),
            "Patient")
    c = one(_bundle(_oru("FACC", pid3="12345^^^HOSPA^MR"), identifier_systems=systems),
            "Patient")
    assert a["identifier"][0]["system"] == "https://hospa.example.org/fhir/sid/mrn"
    assert a["id"] == c["id"]  # the analyst said HOSPA is one authority whoever sends it
    b = _bundle(_oru("FACB"), identifier_systems=systems)
    assert one(b, "Patient")["identifier"][0]["system"] == "https://facb.example.org/fhir/sid/ids"
    request = one(b, "ServiceRequest")
    assert {i["system"] for i in request["identifier"]} == {
        "https://facb.example.org/fhir/sid/ids"}
    # a bare namespace the mapping does not name stays qualified by the sender
    other = one(_bundle(_oru("FACB", pid3="9^^^HOSPZ^MR"), identifier_systems=systems),
                "Patient")
    assert other["identifier"][0]["system"] == "urn:conduit:sender:FACB:LIS:HOSPZ"


@pytest.mark.parametrize(("cx", "system"), [
    ("123456789^^^^SS", "http://hl7.org/fhir/sid/us-ssn"),
    ("123456789^^^USSSA^SS", "http://hl7.org/fhir/sid/us-ssn"),
    ("123456789^^^HOSPA^SS", "http://hl7.org/fhir/sid/us-ssn"),
    ("123456789^^^&2.16.840.1.113883.4.1&ISO", "http://hl7.org/fhir/sid/us-ssn"),
    ("1234567893^^^NPI", "http://hl7.org/fhir/sid/us-npi"),
    ("1234567893^^^^NPI", "http://hl7.org/fhir/sid/us-npi"),
    ("1EG4-TE5-MK73^^^^MC", "http://hl7.org/fhir/sid/us-mbi"),
    ("123456789A^^^^MC", "http://hl7.org/fhir/sid/us-medicare"),
    ("X12^^^^MC", "urn:conduit:sender:FACA:LIS"),
])
def test_well_known_identifier_types_get_their_registry_systems(cx: str, system: str) -> None:
    systems = {"authorities": {"HOSPA": "https://hospa.example.org/mrn"}}
    patient = one(_bundle(_oru("FACA", pid3=f"12345^^^^MR~{cx}"), identifier_systems=systems),
                  "Patient")
    assert patient["identifier"][1]["system"] == system


def test_pid19_ssn_and_practitioner_npi() -> None:
    text = _oru("FACA", orc="ORC|RE|ORD7|FIL7|||||||||1234567893^DOC^ANN^^^^^^NPI\r")
    # PID-19 SSN, PID-20 driver's licence (DLN: number ^ issuing state)
    text = text.replace("|19800101|F\r", "|19800101|F|||||||||||123-45-6789|D123^CA\r")
    bundle = _bundle(text)
    systems = {i["value"]: i["system"] for i in one(bundle, "Patient")["identifier"]}
    assert systems["123-45-6789"] == "http://hl7.org/fhir/sid/us-ssn"
    assert systems["D123"] == "urn:conduit:sender:FACA:LIS:CA"
    doctor = one(bundle, "Practitioner")
    assert doctor["identifier"][0]["system"] == "http://hl7.org/fhir/sid/us-npi"
    assert one(_bundle(text.replace("FACA", "FACB")), "Practitioner")["id"] == doctor["id"]


def test_practitioner_without_authority_is_per_sender() -> None:
    text = _oru("FACA", orc="ORC|RE|ORD7|FIL7|||||||||D77^DOC^ANN\r")
    a, b = one(_bundle(text), "Practitioner"), one(_bundle(text.replace("FACA", "FACB")),
                                                   "Practitioner")
    assert a["identifier"][0]["system"] == "urn:conduit:sender:FACA:LIS"
    assert a["id"] != b["id"]
    named = _oru("FACA", orc="ORC|RE|ORD7|FIL7|||||||||^DOC^ANN\r")
    assert one(_bundle(named), "Practitioner")["id"] != one(
        _bundle(named.replace("FACA", "FACB")), "Practitioner")["id"]


def test_order_numbers_take_the_entity_identifier_authority() -> None:
    orc = "ORC|RE|ORD7^EHR^2.16.840.1.113883.19.4.1^ISO|FIL7^LAB\r"
    obr = "OBR|1|ORD7^EHR^2.16.840.1.113883.19.4.1^ISO|FIL7^LAB|GLU^Glucose^LN\r"
    a = _bundle(_oru("FACA", orc=orc, obr=obr))
    b = _bundle(_oru("FACB", orc=orc, obr=obr))
    systems = {i["value"]: i["system"] for i in one(a, "ServiceRequest")["identifier"]}
    assert systems == {"ORD7": "urn:oid:2.16.840.1.113883.19.4.1",
                       "FIL7": "urn:conduit:sender:FACA:LIS:LAB"}
    # the placer number is universal: one order whoever reports on it
    assert one(a, "ServiceRequest")["id"] == one(b, "ServiceRequest")["id"]
    # the filler number (the report's key) is only the sender's
    assert one(a, "DiagnosticReport")["id"] != one(b, "DiagnosticReport")["id"]


def test_order_numbers_without_namespace_are_per_sender() -> None:
    a, b = _bundle(_oru("FACA")), _bundle(_oru("FACB"))
    ids = one(a, "ServiceRequest")["identifier"]
    assert {i["system"] for i in ids} == {"urn:conduit:sender:FACA:LIS"}
    assert one(a, "ServiceRequest")["id"] != one(b, "ServiceRequest")["id"]


def test_visit_numbers_take_the_rule() -> None:
    pv1 = "PV1|1|O|||||||||||||||||V100^^^HOSPV&2.16.840.1.113883.19.5&ISO\r"
    a = one(_bundle(_oru("FACA", pv1=pv1)), "Encounter")
    b = one(_bundle(_oru("FACB", pv1=pv1)), "Encounter")
    assert a["identifier"][0]["system"] == "urn:oid:2.16.840.1.113883.19.5"
    assert a["id"] == b["id"]
    bare = one(_bundle(_oru("FACA")), "Encounter")
    assert bare["identifier"][0]["system"] == "urn:conduit:sender:FACA:LIS"
    assert bare["identifier"][0]["type"]["coding"][0]["code"] == "VN"


def test_a_message_naming_no_sender_is_refused() -> None:
    text = _oru("", application="")
    with pytest.raises(MessageError, match=r"MSH-3.*MSH-4"):
        _bundle(text)
    # either one is enough to tell senders apart
    assert one(_bundle(_oru("", application="LIS")), "Patient")["identifier"][0]["system"] == \
        "urn:conduit:sender::LIS"


def _bare_identifiers(node: Any, path: str = "") -> list[str]:
    """Paths of identifiers (Identifier, Reference.identifier, requisition) without a system."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("identifier", "requisition"):
                for ident in value if isinstance(value, list) else [value]:
                    if isinstance(ident, dict) and "value" in ident and not ident.get("system"):
                        found.append(f"{path}.{key}")
            found += _bare_identifiers(value, f"{path}.{key}")
    elif isinstance(node, list):
        for item in node:
            found += _bare_identifiers(item, path)
    return found


def test_no_identifier_is_ever_written_without_a_system() -> None:
    bundle = _bundle(_oru("FACA", pid3="1^^^^MR~2^^^X~3^^^&1.2.3&ISO~4"))
    assert _bare_identifiers(bundle) == []
    bare = []
    converted = 0
    for name, text in CORPUS_MESSAGES:
        try:
            message = Message.parse(text)
        except Exception:
            continue  # unparseable corpus files are the parser's tests
        if not message.get("MSH-3") and not message.get("MSH-4"):
            continue  # the PC1 samples name no sender (refused, test above)
        bundle = convert(message, ConvertOptions(timezone="UTC"))
        bare += [f"{name}: {p}" for p in _bare_identifiers(bundle)]
        converted += 1
    assert converted > 200
    assert bare == []


def test_mapping_values_must_be_uris() -> None:
    with pytest.raises(ValueError, match="absolute URI"):
        IdentifierSystems.check({"authorities": {"HOSPA": "hospa mrn"}})
    with pytest.raises(ValueError, match=r"authorities.*facilities"):
        IdentifierSystems.check({"facility": {"X": "urn:x"}})
