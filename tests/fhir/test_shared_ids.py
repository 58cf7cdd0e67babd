"""What a converting process remembers between messages (reference-data ids, a sender's
identifier-system rule) answers exactly what working it out again would, stays bounded, and
follows a mapping edited in place; the header values a conversion reads once are the message's."""

from __future__ import annotations

import uuid

import pytest

from conduit.fhir import ConvertOptions, convert, ids
from conduit.fhir.context import Conversion
from conduit.fhir.ids import NAMESPACE, IdentifierSystems, resource_id, shared_id
from conduit.hl7.message import Message


def test_a_shared_id_is_the_uuid5_id_and_its_reference() -> None:
    parts = ("urn:conduit:sender:HOSPA:ADT1", "si=NORTH", "wa=4E")
    rid, reference = shared_id("Location", parts)
    assert rid == resource_id("Location", *parts) == str(
        uuid.uuid5(NAMESPACE, "\x1f".join(("Location", *parts))))
    assert reference == f"Location/{rid}"
    assert shared_id("Location", parts) == (rid, reference)
    assert resource_id("Device") == str(uuid.uuid5(NAMESPACE, "Device\x1f"))


def test_remembered_ids_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ids, "_SHARED", {})
    monkeypatch.setattr(ids, "_SHARED_MAX", 5)
    for n in range(40):
        rid, _ = shared_id("Practitioner", ("urn:x", str(n)))
        assert rid == resource_id("Practitioner", "urn:x", str(n))
    assert len(ids._SHARED) <= 5


def test_a_mapping_edited_in_place_gives_its_new_systems() -> None:
    mapping = {"authorities": {"HOSPA": "https://a.example/mrn"}}
    first = IdentifierSystems.of(mapping, "FAC", "APP")
    assert first.system("HOSPA", "", "", "MR", "1")[0] == "https://a.example/mrn"
    assert IdentifierSystems.of(mapping, "FAC", "APP") is first  # shared by the sender's messages
    mapping["authorities"]["HOSPA"] = "https://b.example/mrn"
    assert IdentifierSystems.of(mapping, "FAC", "APP").system(
        "HOSPA", "", "", "MR", "1")[0] == "https://b.example/mrn"


def test_the_same_feed_converts_alike_with_and_without_what_was_remembered(
        monkeypatch: pytest.MonkeyPatch) -> None:
    raw = ("MSH|^~\\&|LAB|HOSPA|EHR|HOSPB|20240101120000||ORU^R01|M1|P|2.5.1\r"
           "PID|1||12345^^^HOSPA^MR||Doe^Jane\r"
           "PV1|1|I|W1^R2^B3^NORTH||||1234^Smith^John^^^^^^HOSPA\r"
           "OBR|1|P1|F1|GLU^Glucose^L\r"
           "OBX|1|NM|GLU^Glucose^L||5.4|mmol/L|||||F\r")
    options = ConvertOptions(identifier_systems={"authorities": {"HOSPA": "urn:oid:1.2.3"}})
    warm = [convert(Message.parse(raw), options) for _ in range(2)]
    monkeypatch.setattr(ids, "_SHARED", {})
    monkeypatch.setattr(ids, "_BY_SENDER", {})
    cold = convert(Message.parse(raw), options)
    assert warm[0] == warm[1] == cold


@pytest.mark.parametrize("msh", [
    "MSH|^~\\&|APP|FAC|||20240101||ADT^A01^ADT_A01|C1|P|2.5",
    "MSH|^~\\&|APP|FAC|||20240101||ADT^A01~ORU^R01|C1~C2|P|2.5",  # repeated: the first
    "MSH|^~\\&|APP|FAC|||20240101||ADT|C\\T\\1|P|2.5",  # no trigger; MSH-10 raw, escaped
    "MSH|^~\\&|APP|FAC|||20240101",  # neither field
])
def test_header_values_are_the_messages_own(msh: str) -> None:
    message = Message.parse(msh + "\rPID|1||1\r")
    ctx = Conversion(message)
    assert ctx.control_id == message.control_id
    assert ctx.message_code == message.message_code
    assert ctx.trigger_event == message.trigger_event
    assert ctx.message_type == message.message_type
    assert ctx.first("PID") is not None and ctx.first("EVN") is None
