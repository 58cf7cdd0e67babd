"""HL7 v2 message -> FHIR Bundle: mappings, deterministic ids, and R4B validity on the corpus."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from conduit.core.errors import MessageError
from conduit.fhir import ConvertOptions, convert, dumps
from conduit.fhir.validate import bundle_problems
from conduit.hl7.batch import split_messages
from conduit.hl7.message import Message
from tests.samples import ADT_A01, CORPUS, ORU_R01, corpus_id, sample

Json = dict[str, Any]


def resources(bundle: Json, kind: str) -> list[Json]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def one(bundle: Json, kind: str) -> Json:
    found = resources(bundle, kind)
    assert len(found) == 1, f"{len(found)} {kind}"
    return found[0]


def test_adt_patient_encounter_and_related_person() -> None:
    bundle = convert(Message.parse(ADT_A01))
    assert bundle["type"] == "transaction"
    patient = one(bundle, "Patient")
    assert patient["name"][0] == {"family": "TESTPATIENT", "given": ["ALPHA", "Q"],
                                  "use": "official"}
    assert patient["gender"] == "male"
    assert patient["birthDate"] == "1970-01-01"
    assert [i["value"] for i in patient["identifier"]] == ["PATID1234", "SSN000000"]
    assert patient["address"][0]["city"] == "SPRINGFIELD"
    encounter = one(bundle, "Encounter")
    assert encounter["class"]["code"] == "IMP"
    assert encounter["status"] == "in-progress"
    assert encounter["subject"] == {"reference": f"Patient/{patient['id']}"}
    bed = encounter["location"][0]["location"]["reference"]
    assert bed.startswith("Location/")
    related = one(bundle, "RelatedPerson")
    assert related["relationship"][0]["coding"][0]["code"] == "SPO"
    header = one(bundle, "MessageHeader")
    assert header["eventCoding"]["code"] == "A01"
    provenance = one(bundle, "Provenance")
    assert {"reference": f"Patient/{patient['id']}"} in provenance["target"]
    for entry in bundle["entry"]:
        r = entry["resource"]
        assert entry["request"] == {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}


def test_oru_observations_report_and_notes() -> None:
    bundle = convert(Message.parse(ORU_R01))
    report = one(bundle, "DiagnosticReport")
    observations = resources(bundle, "Observation")
    assert len(observations) == 3
    assert report["result"] == [{"reference": f"Observation/{o['id']}"} for o in observations]
    glucose, comment, potassium = observations
    assert glucose["valueQuantity"]["value"] == Decimal("5.4")
    assert glucose["valueQuantity"]["unit"] == "mmol/L"
    assert glucose["referenceRange"][0]["low"]["value"] == Decimal("3.9")
    assert glucose["status"] == "final"
    assert comment["valueString"] == "Fasting & rested"  # escape sequence decoded
    assert potassium["note"] == [{"text": "Line one\nLine two"}]
    request = one(bundle, "ServiceRequest")
    assert request["identifier"][0]["value"] == "ORD1"
    assert report["basedOn"] == [{"reference": f"ServiceRequest/{request['id']}"}]


def test_ids_are_deterministic_and_keyed_on_business_identifiers() -> None:
    first = convert(Message.parse(ADT_A01))
    again = convert(Message.parse(ADT_A01))
    assert [e["fullUrl"] for e in first["entry"]] == [e["fullUrl"] for e in again["entry"]]
    # an update for the same patient (other message, other control id) hits the same Patient
    update = ADT_A01.replace("ADT^A01^ADT_A01|MSG00001", "ADT^A08^ADT_A01|MSG00099")
    updated = convert(Message.parse(update))
    assert one(updated, "Patient")["id"] == one(first, "Patient")["id"]
    assert one(updated, "MessageHeader")["id"] != one(first, "MessageHeader")["id"]
    other = ADT_A01.replace("PATID1234", "PATID9999")
    assert one(convert(Message.parse(other)), "Patient")["id"] != one(first, "Patient")["id"]


def test_batch_option_and_time_zone() -> None:
    msg = Message.parse(ADT_A01.replace("|20240102030405||ADT", "|20240102030405||ADT")
                        .replace("PV1|1|I|", "PV1|1|E|"))
    bundle = convert(msg, ConvertOptions(bundle_type="batch", timezone="Europe/Berlin"))
    assert bundle["type"] == "batch"
    assert bundle["timestamp"] == "2024-01-02T03:04:05+01:00"
    assert one(bundle, "Encounter")["class"]["code"] == "EMER"


def test_msh7_zone_applies_to_times_without_one() -> None:
    msg = Message.parse(ORU_R01.replace("|20240102040506|", "|20240102040506-0500|")
                        .replace("OBR|1|ORD1|FIL1|GLU^Glucose^L",
                                 "OBR|1|ORD1|FIL1|GLU^Glucose^L|||202401020300"))
    report = one(convert(msg), "DiagnosticReport")
    assert report["effectiveDateTime"] == "2024-01-02T03:00:00-05:00"


def test_decimal_written_as_sent() -> None:
    msg = Message.parse(ORU_R01.replace("||5.4|mmol/L", "||5.40|mmol/L"))
    assert b'"value":5.40' in dumps(convert(msg))


def test_vxu_immunization() -> None:
    bundle = convert(Message.parse(sample("microsoft-fhir-converter/VXU-V04-01.hl7")))
    imm = resources(bundle, "Immunization")[0]
    systems = [c.get("system") for c in imm["vaccineCode"]["coding"]]
    assert "http://hl7.org/fhir/sid/cvx" in systems or "http://hl7.org/fhir/sid/ndc" in systems
    assert imm["status"] == "completed"
    assert "occurrenceDateTime" in imm


def test_siu_appointment_has_patient_although_pid_comes_after_sch() -> None:
    bundle = convert(Message.parse(sample("microsoft-fhir-converter/SIU-S12-01.hl7")))
    appt = one(bundle, "Appointment")
    patient = one(bundle, "Patient")
    assert {"actor": {"reference": f"Patient/{patient['id']}"},
            "status": "accepted"} in appt["participant"]


def test_mdm_document_reference_carries_the_text() -> None:
    bundle = convert(Message.parse(sample("microsoft-fhir-converter/MDM-T02-01.hl7")))
    doc = one(bundle, "DocumentReference")
    assert doc["content"][0]["attachment"]["contentType"].startswith("text/plain")


def _corpus_messages() -> list[tuple[str, str]]:
    out = []
    for path in sorted(CORPUS.rglob("*.hl7")):
        text = path.read_bytes().decode("utf-8", errors="replace")
        try:
            messages = split_messages(text)
        except Exception:
            continue  # damaged batch files are the batch splitter's tests, not ours
        for i, m in enumerate(messages, start=1):
            if m.startswith("MSH") and "sample_bad" not in path.name:
                out.append((f"{corpus_id(path)}#{i}", m))
    return out


CORPUS_MESSAGES = _corpus_messages()


@pytest.mark.parametrize(("name", "text"), CORPUS_MESSAGES, ids=[n for n, _ in CORPUS_MESSAGES])
def test_every_corpus_bundle_is_valid_r4b(name: str, text: str) -> None:
    try:
        message = Message.parse(text)
    except Exception:
        pytest.skip("not parseable (the parser's corpus tests cover it)")
    if not message.get("MSH-3") and not message.get("MSH-4"):
        # no sender named: refused (whose MRN is it?), then converted once one is set
        with pytest.raises(MessageError, match=r"MSH-3.*MSH-4"):
            convert(message)
        message = Message.parse(text.replace("MSH|^~\\&|||", "MSH|^~\\&||CORPUS|", 1))
    bundle = convert(message, ConvertOptions(timezone="America/New_York"))
    assert bundle_problems(bundle) == []
    assert orjson.loads(dumps(bundle))["entry"]


def test_the_microsoft_corpus_is_all_there() -> None:
    files = list((CORPUS / "microsoft-fhir-converter").glob("*.hl7"))
    assert len(files) == 139
    assert Path(CORPUS / "microsoft-fhir-converter" / "expected").is_dir()


def test_merge_links_the_prior_patient() -> None:
    msg = Message.parse(
        "MSH|^~\\&|REG|HOSP|EHR|HOSP|20240102030405||ADT^A40^ADT_A39|M40|P|2.5.1\r"
        "EVN|A40|20240102030405\r"
        "PID|1||KEEP1^^^HOSP^MR||TESTPATIENT^ALPHA\r"
        "MRG|OLD9^^^HOSP^MR\r")
    bundle = convert(msg)
    survivor, prior = resources(bundle, "Patient")
    assert prior["active"] is False
    assert prior["link"] == [{"other": {"reference": f"Patient/{survivor['id']}"},
                              "type": "replaced-by"}]
    assert survivor["link"][0]["type"] == "replaces"
    # the prior Patient is the one its own messages created
    old = convert(Message.parse(msg.encode().replace("KEEP1", "OLD9").split("MRG")[0]))
    assert one(old, "Patient")["id"] == prior["id"]
    assert bundle_problems(bundle) == []


def test_guarantor_self_adds_to_the_patient_and_iam_is_an_allergy() -> None:
    bundle = convert(Message.parse(sample("microsoft-fhir-converter/ADT-A01-01.hl7")))
    patient = one(bundle, "Patient")
    assert "G-SSN-12" in [i["value"] for i in patient["identifier"]]  # GT1-12, GT1-11 = SEL
    assert "DB123" in [i["value"] for i in patient["identifier"]]  # DB1, disabled = patient
    assert patient["deceasedDateTime"]
    mother = [r for r in resources(bundle, "RelatedPerson")
              if r["relationship"][0]["coding"][0]["code"] == "MTH"]
    assert mother and mother[0]["identifier"][0]["value"] == "1212121"
    referral = one(bundle, "ServiceRequest")  # RF1
    assert referral["category"][0]["coding"][0]["code"] == "3457005"
    assert referral["status"] == "draft"  # RF1-1 P (pending)
    causes = [c for c in resources(bundle, "Condition") if c.get("note")]
    assert causes[0]["code"]["coding"][0]["code"] == "I21"  # PDA-1
    a60 = convert(Message.parse(sample("microsoft-fhir-converter/ADT-A60-01.hl7")))
    allergy = one(a60, "AllergyIntolerance")
    assert allergy["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert allergy["category"] == ["food"]


def test_conditional_transaction_puts_by_identifier_and_links_by_fullurl() -> None:
    msg = Message.parse(ADT_A01.replace("PATID1234^^^GOOD HEALTH HOSPITAL^MR",
                                        "PATID1234^^^&2.16.840.1.113883.19.5&ISO^MR"))
    bundle = convert(msg, ConvertOptions(conditional=True))
    entries = {e["resource"]["resourceType"]: e for e in bundle["entry"]}
    patient = entries["Patient"]
    assert patient["request"]["url"] == \
        "Patient?identifier=urn%3Aoid%3A2.16.840.1.113883.19.5%7CPATID1234"
    assert entries["Encounter"]["resource"]["subject"] == {"reference": patient["fullUrl"]}
    assert entries["MessageHeader"]["request"]["url"].startswith("MessageHeader/")
    assert bundle_problems(bundle) == []
    batch = convert(msg, ConvertOptions(conditional=True, bundle_type="batch"))
    assert all("?" not in e["request"]["url"] for e in batch["entry"])


def test_dft_charge_item_and_procedure() -> None:
    bundle = convert(Message.parse(sample("microsoft-fhir-converter/DFT-P03-01.hl7")))
    charges = resources(bundle, "ChargeItem")
    first = charges[0]
    assert first["status"] == "billable"
    assert first["code"]["coding"][0] == {"system": "http://www.ama-assn.org/go/cpt",
                                          "code": "71045", "display": "Xray exam chest 1 view"}
    assert first["quantity"] == {"value": Decimal("2")}
    assert first["priceOverride"] == {"value": Decimal("100"), "currency": "USD"}
    procedure = next(p for p in resources(bundle, "Procedure")
                     if first["service"] == [{"reference": f"Procedure/{p['id']}"}])
    assert procedure["code"]["coding"][0]["code"] == "71045"
    assert bundle_problems(bundle) == []
