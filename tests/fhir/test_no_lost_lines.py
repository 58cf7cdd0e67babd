"""No OBX line or value is lost on the way to FHIR (issue 14, item 3).

Two OBX with the same set id, code and sub-id are two results, not one that keeps the first;
every OBX-5 repetition is kept; ED (embedded documents) and RP (pointers) become attachments in
every message type, as the IG's OBX[Observation] map says (extension valueAttachment), and go
back to v2 as ED and RP.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from conduit.fhir import convert, dumps
from conduit.fhir.attachment import VALUE_ATTACHMENT
from conduit.fhir.tov2 import ConversionError, to_hl7v2
from conduit.fhir.validate import bundle_problems
from conduit.hl7.message import Message

Json = dict[str, Any]

IG_URL = "https://hl7.org/fhir/5.0/StructureDefinition/extension-Observation.valueAttachment"
PDF = base64.b64encode(b"%PDF-1.4 synthetic report\n%%EOF").decode("ascii")

MSH = "MSH|^~\\&|LAB|HOSP|EHR|HOSP|20260102080000+0100||{type}|{id}|P|2.5.1\r"
PID = "PID|1||MRN100^^^HOSP^MR||DOE^JANE||19800101|F\r"
PV1 = "PV1|1|O|CLINIC\r"
OBR = "OBR|1|PL1|FL1^LAB|24331-1^Lipid panel^LN|||20260102073000+0100\r"


def observations(bundle: Json) -> list[Json]:
    return [e["resource"] for e in bundle["entry"]
            if e["resource"]["resourceType"] == "Observation"]


def convert_text(text: str) -> Json:
    bundle = convert(Message.parse(text))
    assert bundle_problems(bundle) == []
    return bundle


def attachments(obs: Json) -> list[Json]:
    return [x["valueAttachment"] for x in obs.get("extension", ()) if x.get("url") == IG_URL]


def test_obx_repeating_set_id_and_code_are_separate_observations() -> None:
    text = (MSH.format(type="ORU^R01^ORU_R01", id="R1") + PID + OBR
            + "OBX|1|NM|2093-3^Cholesterol^LN||180|mg/dL|||||F\r"
            + "OBX|1|NM|2093-3^Cholesterol^LN||240|mg/dL|||||F\r")
    bundle = convert_text(text)
    values = sorted(str(o["valueQuantity"]["value"]) for o in observations(bundle))
    assert values == ["180", "240"]
    ids = [o["id"] for o in observations(bundle)]
    assert len(set(ids)) == 2
    report = next(e["resource"] for e in bundle["entry"]
                  if e["resource"]["resourceType"] == "DiagnosticReport")
    assert sorted(r["reference"] for r in report["result"]) == sorted(
        f"Observation/{i}" for i in ids)


def test_repeated_obx_ids_are_stable_on_resend() -> None:
    text = (MSH.format(type="ORU^R01^ORU_R01", id="R2") + PID + OBR
            + "OBX||ST|8251-1^Note^LN||first||||||F\r"
            + "OBX||ST|8251-1^Note^LN||second||||||F\r")
    first = [(o["id"], o["valueString"]) for o in observations(convert_text(text))]
    again = [(o["id"], o["valueString"]) for o in observations(convert_text(text))]
    assert first == again
    assert [v for _, v in first] == ["first", "second"]


def test_vxu_obx_repeating_set_id_and_code_are_kept() -> None:
    text = (MSH.format(type="VXU^V04^VXU_V04", id="V1") + PID
            + "ORC|RE||IZ-1^EHR\r"
            + "RXA|0|1|20260101|20260101|08^HepB^CVX|999\r"
            + "OBX|1|CE|64994-7^Eligibility^LN||V02^VFC eligible^HL70064||||||F\r"
            + "OBX|1|CE|64994-7^Eligibility^LN||V03^VFC eligible AI/AN^HL70064||||||F\r")
    codes = sorted(o["valueCodeableConcept"]["coding"][0]["code"]
                   for o in observations(convert_text(text)))
    assert codes == ["V02", "V03"]


@pytest.mark.parametrize("kind, reps, expected", [
    ("NM", "1.5~2.5~3.5", ["1.5", "2.5", "3.5"]),
    ("CWE", "A^Alpha^L~B^Beta^L", ["A", "B"]),
    ("ST", "one~two", ["one", "two"]),
])
def test_every_obx5_repetition_is_kept(kind: str, reps: str, expected: list[str]) -> None:
    text = (MSH.format(type="ORU^R01^ORU_R01", id="R3") + PID + OBR
            + f"OBX|1|{kind}|X1^Series^L||{reps}||||||F\r")
    [obs] = observations(convert_text(text))
    found = _all_values(obs)
    for value in expected:
        assert value in found, (value, found)


def _all_values(obs: Json) -> str:
    """Every value of the Observation, as its JSON text."""
    return dumps(obs).decode()


@pytest.mark.parametrize("kind, head", [
    ("ORU^R01^ORU_R01", PID + OBR),
    ("ADT^A01^ADT_A01", "EVN|A01|20260102080000\r" + PID + PV1),
    ("ORM^O01^ORM_O01", PID + "ORC|NW|PL1|FL1^LAB\r" + OBR),
    ("OML^O21^OML_O21", PID + "ORC|NW|PL1|FL1^LAB\r" + OBR),
    ("VXU^V04^VXU_V04", PID + "ORC|RE||IZ-1^EHR\rRXA|0|1|20260101|20260101|08^HepB^CVX|999\r"),
], ids=["ORU", "ADT", "ORM", "OML", "VXU"])
def test_ed_and_rp_become_attachments_in_every_message_type(kind: str, head: str) -> None:
    text = (MSH.format(type=kind, id="E1") + head
            + f"OBX|1|ED|11502-2^Lab report^LN||LAB^AP^PDF^Base64^{PDF}||||||F\r"
            + "OBX|2|RP|11502-2^Lab report^LN||https://reports.example.org/r/1^LAB^AP^PDF||||||F\r")
    obs = observations(convert_text(text))
    found = [a for o in obs for a in attachments(o)]
    assert {"contentType": "application/pdf", "data": PDF} in found
    assert {"contentType": "application/pdf", "url": "https://reports.example.org/r/1"} in found


def test_ed_repetitions_and_text_encodings_are_all_kept() -> None:
    hex_data = b"plain text note".hex().upper()
    text = (MSH.format(type="ORU^R01^ORU_R01", id="E2") + PID + OBR
            + f"OBX|1|ED|11502-2^Lab report^LN||LAB^AP^PDF^Base64^{PDF}"
            + f"~LAB^TEXT^PLAIN^Hex^{hex_data}~LAB^TEXT^PLAIN^A^short note||||||F\r")
    [obs] = observations(convert_text(text))
    found = attachments(obs)
    assert [a.get("data") for a in found] == [
        PDF, base64.b64encode(b"plain text note").decode(),
        base64.b64encode(b"short note").decode()]
    assert [a["contentType"] for a in found] == ["application/pdf", "text/plain", "text/plain"]


def test_damaged_base64_is_not_passed_on_as_the_document() -> None:
    text = (MSH.format(type="ORU^R01^ORU_R01", id="E3") + PID + OBR
            + "OBX|1|ED|11502-2^Lab report^LN||LAB^AP^PDF^Base64^@@not-base64@@||||||F\r")
    [obs] = observations(convert_text(text))
    [found] = attachments(obs)
    assert "data" not in found
    assert "not decodable" in found["title"]


def test_attachments_go_back_to_v2_as_ed_and_rp() -> None:
    text = (MSH.format(type="ORU^R01^ORU_R01", id="E4") + PID + OBR
            + f"OBX|1|ED|11502-2^Lab report^LN||LAB^AP^PDF^Base64^{PDF}~^TEXT^PLAIN^A^note||||||F\r"
            + "OBX|2|RP|11502-2^Lab report^LN||https://reports.example.org/r/1^LAB^AP^PDF||||||F\r")
    back = Message.parse(to_hl7v2(convert_text(text)))
    ed, rp = back.segments("OBX")
    assert ed.get("2") == "ED"
    assert ed.fields[5] == (f"^AP^PDF^Base64^{PDF}~^TEXT^PLAIN^Base64^"
                           + base64.b64encode(b"note").decode())
    assert rp.get("2") == "RP"
    assert rp.fields[5] == "https://reports.example.org/r/1^^AP^PDF"


def test_embedded_and_linked_attachments_in_one_observation_are_refused() -> None:
    """One OBX carries ED or RP values, not both: writing either would drop the other."""
    bundle = convert_text(MSH.format(type="ORU^R01^ORU_R01", id="E5") + PID + OBR
                          + f"OBX|1|ED|11502-2^Lab report^LN||^AP^PDF^Base64^{PDF}||||||F\r")
    [obs] = observations(bundle)
    obs["extension"].append({"url": VALUE_ATTACHMENT,
                             "valueAttachment": {"url": "https://reports.example.org/r/2"}})
    with pytest.raises(ConversionError, match="both embedded and linked"):
        to_hl7v2(bundle)


def resources(bundle: Json, kind: str) -> list[Json]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_two_tests_ordered_under_one_order_number_are_two_service_requests() -> None:
    text = (MSH.format(type="OML^O21^OML_O21", id="O1") + PID
            + "ORC|NW|PL9|FL9^LAB\rOBR|1|PL9|FL9^LAB|75622-1^HIV 1+2 Ab+Ag^LN\r"
            + "ORC|NW|PL9|FL9^LAB\rOBR|2|PL9|FL9^LAB|20507-0^Reagin Ab^LN\r")
    codes = sorted(r["code"]["coding"][0]["code"]
                   for r in resources(convert_text(text), "ServiceRequest"))
    assert codes == ["20507-0", "75622-1"]


def test_two_reports_sharing_a_filler_number_keep_their_own_results() -> None:
    text = (MSH.format(type="ORU^R01^ORU_R01", id="O2") + PID
            + "OBR|1|PL9|FL9^LAB|24331-1^Lipid panel^LN\r"
            + "OBX|1|NM|2093-3^Cholesterol^LN||180|mg/dL|||||F\r"
            + "OBR|2|PL9|FL9^LAB|58410-2^CBC panel^LN\r"
            + "OBX|1|NM|718-7^Hemoglobin^LN||13.5|g/dL|||||F\r")
    bundle = convert_text(text)
    by_id = {o["id"]: o["code"]["coding"][0]["code"] for o in observations(bundle)}
    reports = {r["code"]["coding"][0]["code"]: sorted(by_id[x["reference"].split("/")[1]]
                                                      for x in r["result"])
               for r in resources(bundle, "DiagnosticReport")}
    assert reports == {"24331-1": ["2093-3"], "58410-2": ["718-7"]}


def test_three_doses_under_orcs_repeating_one_number_are_three_immunizations() -> None:
    doses = "".join(f"ORC|RE||IZ-7^EHR\rRXA|0|1|2025010{d}|2025010{d}|08^HepB^CVX|999\r"
                    for d in (1, 2, 3))
    text = MSH.format(type="VXU^V04^VXU_V04", id="V2") + PID + doses
    dates = sorted(r["occurrenceDateTime"][:10]
                   for r in resources(convert_text(text), "Immunization"))
    assert dates == ["2025-01-01", "2025-01-02", "2025-01-03"]


def test_two_allergy_lines_for_one_allergen_keep_both_reactions() -> None:
    text = (MSH.format(type="ADT^A01^ADT_A01", id="A1") + "EVN|A01|20260102080000\r" + PID + PV1
            + "AL1|1|DA|70618^Penicillin^RXNORM|SV|Hives\r"
            + "AL1|2|DA|70618^Penicillin^RXNORM|MO|Rash\r")
    reactions = sorted(m["text"] for a in resources(convert_text(text), "AllergyIntolerance")
                       for r in a.get("reaction", ()) for m in r["manifestation"])
    assert reactions == ["Hives", "Rash"]


def test_one_diagnosis_code_twice_keeps_both_diagnosis_types() -> None:
    text = (MSH.format(type="ADT^A03^ADT_A03", id="A2") + "EVN|A03|20260102080000\r" + PID + PV1
            + "DG1|1||J18.9^Pneumonia^I10||20260101|A\r"
            + "DG1|2||J18.9^Pneumonia^I10||20260102|F\r")
    kinds = sorted(c["code"] for r in resources(convert_text(text), "Condition")
                   for cat in r["category"] for c in cat["coding"]
                   if c["code"] in ("A", "F"))
    assert kinds == ["A", "F"]
