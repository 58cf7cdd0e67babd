"""The IG rows issue 14 named as missing, checked value by value (the coverage script only
checks that a field makes its element): PID-17, PID-18, MRG-3, DG1 -> Encounter.diagnosis,
RXA-11, ORC-7/OBR-27, SCH-8 in table 0277."""

from __future__ import annotations

from typing import Any

from conduit.fhir import convert
from conduit.hl7.message import Message

Json = dict[str, Any]

def seg(name: str, fields: dict[int, str]) -> str:
    """A segment from its fields by number (no counting of bars by hand)."""
    parts = [name] + [""] * max(fields)
    for n, value in fields.items():
        parts[n] = value
    return "|".join(parts)


MSH = "MSH|^~\\&|APP^1.2.3^ISO|FAC^1.2.4^ISO|||20240102030405-0500||{kind}|C1|P|2.5.1"
PID = seg("PID", {1: "1", 3: "MRN1^^^&1.2.5&ISO^MR", 5: "DOE^JANE", 7: "19800102", 8: "F",
                  16: "M", 17: "B^Baptist^HL70006", 18: "ACCT1^^^&1.2.6&ISO^AN"})
PV1 = seg("PV1", {1: "1", 2: "I", 3: "4E^401^1^SGH", 19: "VIS1^^^&1.2.7&ISO^VN"})


def _bundle(*segments: str) -> Json:
    return convert(Message.parse("\r".join(segments)))


def _all(bundle: Json, kind: str) -> list[Json]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_religion_is_coded_by_the_ig_religion_map() -> None:
    patient = _all(_bundle(MSH.format(kind="ADT^A01"), PID, PV1), "Patient")[0]
    religion = next(e for e in patient["extension"]
                    if e["url"] == "http://hl7.org/fhir/StructureDefinition/patient-religion")
    codings = religion["valueCodeableConcept"]["coding"]
    assert codings[0] == {"system": "http://terminology.hl7.org/CodeSystem/v3-ReligiousAffiliation",
                          "code": "1009", "display": "Baptist"}
    assert {"system": "http://terminology.hl7.org/CodeSystem/v2-0006", "code": "B",
            "display": "Baptist"} in codings


def test_account_numbers_of_pid_18_and_mrg_3() -> None:
    bundle = _bundle(MSH.format(kind="ADT^A40^ADT_A39"), PID,
                     "MRG|OLD1^^^&1.2.5&ISO^MR||OLDACCT^^^&1.2.6&ISO^AN")
    patient = _all(bundle, "Patient")[0]
    accounts = {a["identifier"][0]["value"]: a for a in _all(bundle, "Account")}
    assert accounts["ACCT1"]["status"] == "active"
    assert accounts["OLDACCT"]["status"] == "unknown"
    assert accounts["ACCT1"]["identifier"][0]["system"] == "urn:oid:1.2.6"
    for account in accounts.values():
        assert account["subject"] == [{"reference": f"Patient/{patient['id']}"}]


def test_dg1_is_a_diagnosis_of_the_encounter() -> None:
    bundle = _bundle(MSH.format(kind="ADT^A01"), PID, PV1,
                     seg("DG1", {1: "1", 3: "I10^Hypertension^I10", 5: "20230101", 6: "A",
                                 15: "2"}))
    condition = _all(bundle, "Condition")[0]
    encounter = _all(bundle, "Encounter")[0]
    assert encounter["diagnosis"] == [{
        "condition": {"reference": f"Condition/{condition['id']}"},
        "use": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/diagnosis-role",
                            "code": "AD", "display": "Admission Diagnosis"}]},
        "rank": 2}]


def test_rxa_11_administered_at_without_rxa_27() -> None:
    bundle = _bundle(MSH.format(kind="VXU^V04^VXU_V04"), PID,
                     seg("RXA", {1: "0", 2: "1", 3: "20240102", 5: "08^HepB^CVX", 6: "0.5",
                                 7: "mL^mL^UCUM",
                                 11: "^^^CLINIC1^^^^^1 MAIN ST^^SPRINGFIELD^IL^62701^USA"}))
    immunization = _all(bundle, "Immunization")[0]
    location = next(r for r in _all(bundle, "Location")
                    if immunization["location"]["reference"] == f"Location/{r['id']}")
    assert location["name"] == "CLINIC1"
    assert location["address"] == {"line": ["1 MAIN ST"], "city": "SPRINGFIELD", "state": "IL",
                                   "postalCode": "62701", "country": "USA"}


def test_orc_7_and_obr_27_timing_is_the_occurrence() -> None:
    orm = (MSH.format(kind="ORM^O01"), PID,
           seg("ORC", {1: "NW", 2: "P1^APP^1.2.3^ISO",
                       7: "^^^20240105080000^20240105090000^S"}),
           "OBR|1|P1^APP^1.2.3^ISO||GLU^Glucose^L")
    request = _all(_bundle(*orm), "ServiceRequest")[0]
    assert request["occurrencePeriod"] == {"start": "2024-01-05T08:00:00-05:00",
                                           "end": "2024-01-05T09:00:00-05:00"}
    assert request["priority"] == "stat"
    obr_only = (MSH.format(kind="ORM^O01"), PID, "ORC|NW|P1^APP^1.2.3^ISO",
                seg("OBR", {1: "1", 2: "P1^APP^1.2.3^ISO", 4: "GLU^Glucose^L",
                            27: "^^^20240106070000"}))
    assert _all(_bundle(*obr_only), "ServiceRequest")[0]["occurrenceDateTime"] == \
        "2024-01-06T07:00:00-05:00"


def test_sch_8_is_the_appointment_type_in_table_0277() -> None:
    bundle = _bundle(MSH.format(kind="SIU^S12"),
                     seg("SCH", {1: "S1^APP^1.2.3^ISO", 7: "CHECKUP^Checkup^HL70276",
                                 8: "Normal^Routine^HL70277", 9: "30", 10: "min",
                                 11: "^^^20240105090000^20240105093000"}), PID)
    appointment = _all(bundle, "Appointment")[0]
    assert appointment["appointmentType"]["coding"][0]["system"] == \
        "http://terminology.hl7.org/CodeSystem/v2-0277"
    assert appointment["appointmentType"]["coding"][0]["code"] == "Normal"
    # SCH-7 (table 0276) stays the reason, with the IG's SNOMED code first
    assert appointment["reasonCode"][0]["coding"][0] == {
        "system": "http://snomed.info/sct", "code": "866149003",
        "display": "Annual visit (procedure)"}


_ABSENT = {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                          "valueCode": "unknown"}]}


def test_endpoints_not_known_are_said_unknown() -> None:
    """MSH-24/MSH-3 and MSH-25/MSH-5 not valued: the endpoints carry data-absent-reason (IG
    MSH[MessageHeader], with the extension's canonical url), not a made-up "unknown" url."""
    msh = "MSH|^~\\&||FAC^1.2.4^ISO||RFAC^1.2.9^ISO|20240102030405-0500||ADT^A01|C1|P|2.5.1"
    header = _all(_bundle(msh, PID), "MessageHeader")[0]
    assert "endpoint" not in header["source"]
    assert header["source"]["_endpoint"] == _ABSENT
    assert header["destination"][0]["_endpoint"] == _ABSENT
    assert "endpoint" not in header["destination"][0]
    assert header["destination"][0]["receiver"]["reference"].startswith("Organization/")
    # with MSH-24/25 valued, those are the endpoints
    named = msh + "|" * 12 + "NET^1.2.5^ISO|RNET^1.2.6^ISO"
    header = _all(_bundle(named, PID), "MessageHeader")[0]
    assert header["source"]["endpoint"] == "urn:oid:1.2.5"
    assert header["destination"][0]["endpoint"] == "urn:oid:1.2.6"
    assert "_endpoint" not in header["source"]


def test_no_destination_when_nothing_names_one() -> None:
    header = _all(_bundle(MSH.format(kind="ADT^A01"), PID), "MessageHeader")[0]
    assert header["source"]["endpoint"] == "urn:oid:1.2.3"
    assert "destination" not in header


def test_provenance_activity_has_the_event_types_display() -> None:
    """IG EVN[Provenance] activity.coding.display: the display of table 0003 (IG EventType)."""
    provenance = _all(_bundle(MSH.format(kind="ADT^A01"), "EVN|A01|20240102030000", PID),
                      "Provenance")[0]
    assert provenance["activity"]["coding"] == [{
        "system": "http://terminology.hl7.org/CodeSystem/v2-0003", "code": "A01",
        "display": "ADT/ACK - Admit/visit notification"}]


def test_obx_19_analysis_time_and_obx_30_sub_type() -> None:
    """OBX-19 -> observation-analysis-date-time (the url the IG names in its comments);
    OBX-30 observation sub-type is table 0937 (0936 is OBX-29's observation type)."""
    obx = seg("OBX", {1: "1", 2: "NM", 3: "2345-1^Glucose^LN", 5: "4.2", 11: "F",
                      19: "20240102100000", 29: "RSLT", 30: "AOE"})
    observation = _all(_bundle(MSH.format(kind="ORU^R01"), PID, "OBR|1||F1|GLU^Glucose^L",
                               obx), "Observation")[0]
    extensions = {e["url"]: e for e in observation["extension"]}
    analysis = extensions["http://hl7.org/fhir/StructureDefinition/observation-analysis-date-time"]
    assert analysis["valueDateTime"] == "2024-01-02T10:00:00-05:00"
    sub_type = extensions["http://hl7.org/fhir/StructureDefinition/observation-structure-type"]
    assert sub_type["valueCodeableConcept"]["coding"] == [
        {"system": "http://terminology.hl7.org/CodeSystem/v2-0937", "code": "AOE"}]
    assert observation["category"][0]["coding"][0]["system"] == \
        "http://terminology.hl7.org/CodeSystem/v2-0936"


def test_pid_25_birth_order_wins_over_pid_24() -> None:
    """IG PID[Patient]: PID-25 -> multipleBirthInteger; PID-24 -> multipleBirthBoolean only
    IF PID-25 NOT VALUED. A birth order that is no positive integer is not one."""
    def multiple_birth(indicator: str, order: str) -> dict[str, object]:
        pid = seg("PID", {1: "1", 3: "MRN1^^^&1.2.5&ISO^MR", 5: "DOE^JANE", 24: indicator,
                          25: order})
        patient = _all(_bundle(MSH.format(kind="ADT^A01"), pid), "Patient")[0]
        return {k: v for k, v in patient.items() if k.startswith("multipleBirth")}

    assert multiple_birth("N", "2") == {"multipleBirthInteger": 2}
    assert multiple_birth("Y", "") == {"multipleBirthBoolean": True}
    assert multiple_birth("Y", "0") == {"multipleBirthBoolean": True}
    assert multiple_birth("Y", "\u00b2") == {"multipleBirthBoolean": True}  # isdigit, no int
    assert multiple_birth("", "99999999999") == {}  # beyond FHIR's 32-bit integer
