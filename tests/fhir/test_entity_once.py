"""A practitioner or location named by several segments is made once per message, and every
place that names it gets its own Reference dict (a caller adding to one changes no other)."""

from __future__ import annotations

from conduit.fhir import convert
from conduit.fhir.context import Conversion
from conduit.fhir.entities import location, practitioner
from conduit.hl7.message import Message

RAW = "\r".join([
    "MSH|^~\\&|LIS|HOSPA|EHR|HOSPB|20240101120000||ORU^R01|MSG1|P|2.5.1",
    "PID|1||12345^^^HOSPA^MR||Doe^Jane||19800101|F",
    "PV1|1|I|W1^R2^B3||||1234^Smith^John^^^^^^HOSPA|||||||||||V1^^^HOSPA^VN",
    "OBR|1|P1|F1|GLU^Glucose^L",
    "OBX|1|NM|GLU^Glucose^L||5.4|mmol/L|||||F|||20240101110000||1234^Smith^John^^^^^^HOSPA",
    "OBX|2|NM|K^Potassium^L||4.1|mmol/L|||||F|||20240101110000||1234^Smith^John^^^^^^HOSPA",
]) + "\r"


def test_one_practitioner_for_three_mentions() -> None:
    bundle = convert(Message.parse(RAW))
    practitioners = [e["resource"] for e in bundle["entry"]
                     if e["resource"]["resourceType"] == "Practitioner"]
    assert len(practitioners) == 1
    assert practitioners[0]["name"] == [{"family": "Smith", "given": ["John"]}]
    roles = [e["resource"] for e in bundle["entry"]
             if e["resource"]["resourceType"] == "PractitionerRole"]
    assert roles and all(r["practitioner"]["reference"] == f"Practitioner/{practitioners[0]['id']}"
                         for r in roles)


def test_each_mention_gets_its_own_reference_dict() -> None:
    ctx = Conversion(Message.parse(RAW))
    pv1 = ctx.seg(ctx.message.segments("PV1")[0])
    first, second = practitioner(ctx, pv1.field(7)), practitioner(ctx, pv1.field(7))
    assert first == second and first is not second
    assert first is not None
    first["display"] = "changed by a caller"
    assert "display" not in (practitioner(ctx, pv1.field(7)) or {})
    here, again = location(ctx, pv1.field(3)), location(ctx, pv1.field(3))
    assert here == again and here is not again
