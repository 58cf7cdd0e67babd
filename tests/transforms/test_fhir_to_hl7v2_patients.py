"""fhir-to-hl7v2 never writes one patient's data under another's PID (issue 14, item 2).

A Bundle of several patients is refused (default) or split into one message per patient; a
result or visit whose subject is not in the Bundle, or is another patient, is refused with an
error that names the resource and never a patient's values.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from conduit.cli import main
from conduit.core.errors import MessageError
from conduit.engine.channeltest import format_report, run_tests
from conduit.hl7.batch import split_messages
from conduit.hl7.message import Message
from conduit.transforms.fhir_to_hl7v2 import FhirToHl7v2, FhirToHl7v2Options
from conduit.transforms.registry import StepState

ANN: dict[str, Any] = {
    "resourceType": "Patient", "id": "pa",
    "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": "MRN-ANN"}],
    "name": [{"family": "Annfamily", "given": ["Ann"]}], "birthDate": "1980-01-01"}
BOB: dict[str, Any] = {
    "resourceType": "Patient", "id": "pb",
    "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": "MRN-BOB"}],
    "name": [{"family": "Bobfamily", "given": ["Bob"]}], "birthDate": "1990-02-02"}
PHI = ("MRN-ANN", "MRN-BOB", "Annfamily", "Bobfamily", "1980", "1990")


def glucose(id_: str, subject: str, value: float | str, **more: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": id_, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7",
                                 "display": "Glucose"}]},
            "subject": {"reference": subject},
            "valueQuantity": {"value": value, "unit": "mmol/L"}, **more}


def encounter(id_: str, subject: str) -> dict[str, Any]:
    return {"resourceType": "Encounter", "id": id_, "status": "in-progress",
            "class": {"code": "IMP"}, "subject": {"reference": subject},
            "identifier": [{"value": f"V-{id_}"}]}


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources]}


def run_text(text: str, **options: Any) -> str:
    state = StepState(None, text)  # type: ignore[arg-type]
    FhirToHl7v2(FhirToHl7v2Options.model_validate(options))(state)
    assert state.body is not None
    return state.body


def run(data: dict[str, Any], **options: Any) -> str:
    return run_text(orjson.dumps(data).decode(), **options)


def refused(data: dict[str, Any], match: str, **options: Any) -> str:
    with pytest.raises(MessageError, match=match) as caught:
        run(data, **options)
    text = str(caught.value)
    for value in PHI:
        assert value not in text, f"the error shows patient data: {text}"
    return text


def strict(text: str) -> None:
    message = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    assert message.validate()


# -- several patients ---------------------------------------------------------------------------

TWO = bundle(ANN, BOB, glucose("oa", "urn:uuid:pa", 5.1), glucose("ob", "Patient/pb", 9.9))


def test_a_bundle_of_two_patients_is_refused_by_default() -> None:
    text = refused(TWO, "2 patients")
    assert "patients: split" in text  # says how to get one message per patient


def test_two_patient_resources_alone_are_two_patients() -> None:
    refused(bundle(ANN, BOB), "2 patients")


def test_split_writes_one_message_per_patient_each_with_its_own_results() -> None:
    text = run(TWO, patients="split")
    assert text.startswith("BHS|^~\\&|") and text.rstrip("\r").endswith("BTS|2")
    messages = [Message.parse(m) for m in split_messages(text)]
    assert len(messages) == 2
    by_mrn = {m["PID-3.1"]: m for m in messages}
    assert set(by_mrn) == {"MRN-ANN", "MRN-BOB"}
    assert by_mrn["MRN-ANN"]["PID-5.1"] == "Annfamily"
    assert [o.get("5") for o in by_mrn["MRN-ANN"].segments("OBX")] == ["5.1"]
    assert [o.get("5") for o in by_mrn["MRN-BOB"].segments("OBX")] == ["9.9"]
    assert messages[0]["MSH-10"] != messages[1]["MSH-10"]
    for m in split_messages(text):
        strict(m)


def test_split_of_one_patient_is_a_plain_message() -> None:
    text = run(bundle(ANN, glucose("oa", "urn:uuid:pa", 5.1)), patients="split")
    assert text.startswith("MSH|")
    assert Message.parse(text)["PID-3.1"] == "MRN-ANN"


def test_split_adt_gives_each_patient_its_own_visit() -> None:
    text = run(bundle(ANN, BOB, encounter("eb", "urn:uuid:pb"), encounter("ea", "Patient/pa")),
               patients="split")
    messages = {m["PID-3.1"]: m for m in (Message.parse(x) for x in split_messages(text))}
    assert messages["MRN-ANN"]["PV1-19.1"] == "V-ea"
    assert messages["MRN-BOB"]["PV1-19.1"] == "V-eb"
    assert all(m.message_type == "ADT^A08" for m in messages.values())


# -- subjects that are not the message's patient ------------------------------------------------

def test_an_observation_whose_subject_is_not_in_the_bundle_is_refused() -> None:
    # before: sent under Ann, the only Patient there
    text = refused(bundle(ANN, glucose("ox", "Patient/somebody-else", 7.0)),
                   "Observation/ox.*subject.*not in the Bundle")
    assert "somebody-else" not in text


def test_a_report_whose_subject_is_not_in_the_bundle_is_refused() -> None:
    report = {"resourceType": "DiagnosticReport", "id": "dr1", "status": "final",
              "code": {"text": "Panel"}, "subject": {"reference": "Patient/other"},
              "result": [{"reference": "urn:uuid:oa"}]}
    refused(bundle(ANN, report, glucose("oa", "urn:uuid:pa", 5.1)),
            "DiagnosticReport/dr1.*subject.*not in the Bundle")


def test_a_report_with_a_result_of_another_patient_is_refused_even_when_split() -> None:
    report = {"resourceType": "DiagnosticReport", "id": "dr1", "status": "final",
              "code": {"text": "Panel"}, "subject": {"reference": "urn:uuid:pa"},
              "result": [{"reference": "urn:uuid:ob"}]}
    refused(bundle(ANN, BOB, report, glucose("ob", "urn:uuid:pb", 9.9)),
            "DiagnosticReport/dr1.*Observation/ob.*another patient", patients="split")


def test_a_report_result_missing_from_the_bundle_is_refused() -> None:
    report = {"resourceType": "DiagnosticReport", "id": "dr1", "status": "final",
              "code": {"text": "Panel"}, "subject": {"reference": "urn:uuid:pa"},
              "result": [{"reference": "Observation/not-here"}]}
    refused(bundle(ANN, report), "DiagnosticReport/dr1.*result.*not in the Bundle")


def test_an_encounter_whose_subject_is_not_in_the_bundle_is_refused() -> None:
    refused(bundle(ANN, encounter("ex", "Patient/other")),
            "Encounter/ex.*subject.*not in the Bundle")


def test_an_observation_in_another_patients_encounter_is_refused() -> None:
    obs = glucose("oa", "urn:uuid:pa", 5.1, encounter={"reference": "urn:uuid:eb"})
    refused(bundle(ANN, BOB, encounter("eb", "urn:uuid:pb"), obs),
            "Observation/oa.*encounter.*another patient", patients="split")


def test_a_result_without_a_subject_is_refused() -> None:
    obs = glucose("oa", "urn:uuid:pa", 5.1)
    del obs["subject"]
    refused(bundle(ANN, obs), "Observation/oa.*no subject")
    refused(obs, "Observation/oa.*no subject")  # before: PID-3 "unknown"


def test_a_subject_given_by_identifier_finds_its_patient() -> None:
    obs = glucose("ob", "", 9.9)
    obs["subject"] = {"identifier": {"system": "urn:oid:2.16.840.1.113883.19.5",
                                     "value": "MRN-BOB"}}
    text = run(bundle(ANN, BOB, obs), patients="split")
    messages = {m["PID-3.1"]: m for m in (Message.parse(x) for x in split_messages(text))}
    assert messages["MRN-BOB"]["OBX-5"] == "9.9"
    assert not messages["MRN-ANN"].segments("OBX")


# -- the message type the channel asks for -----------------------------------------------------

ADT_BUNDLE = bundle(ANN, encounter("ea", "urn:uuid:pa"),
                    glucose("oa", "urn:uuid:pa", 5.1, encounter={"reference": "urn:uuid:ea"}))


@pytest.mark.parametrize("version", ["2.3.1", "2.4", "2.5", "2.5.1", "2.6"])
def test_an_adt_bundle_with_observations_stays_an_adt_when_asked(version: str) -> None:
    text = run(ADT_BUNDLE, message_type="ADT", event="A08", version=version)
    msg = Message.parse(text)
    assert msg.message_type == "ADT^A08"
    assert msg["PV1-19.1"] == "V-ea"
    assert [s.name for s in msg.segments()][:4] == ["MSH", "EVN", "PID", "PV1"]
    assert msg["OBX-3.1"] == "2345-7" and msg["OBX-5"] == "5.1"
    assert not msg.segments("OBR")
    strict(text)


def test_a_message_header_with_an_adt_event_keeps_the_adt() -> None:
    header = {"resourceType": "MessageHeader", "id": "mh",
              "eventCoding": {"system": "http://terminology.hl7.org/CodeSystem/v2-0003",
                              "code": "A01"},
              "source": {"endpoint": "x"}}
    data = {**ADT_BUNDLE, "entry": [{"resource": header}, *ADT_BUNDLE["entry"]]}
    assert Message.parse(run(data)).message_type == "ADT^A08"  # before: ORU^R01


def test_oru_when_asked_and_without_results_is_refused() -> None:
    assert Message.parse(run(ADT_BUNDLE, message_type="ORU")).message_type == "ORU^R01"
    refused(bundle(ANN), "no Observation or DiagnosticReport", message_type="ORU")


def test_a_report_cannot_be_put_in_an_adt() -> None:
    report = {"resourceType": "DiagnosticReport", "id": "dr1", "status": "final",
              "code": {"text": "Panel"}, "subject": {"reference": "urn:uuid:pa"}}
    refused(bundle(ANN, report), "DiagnosticReport/dr1.*ADT", message_type="ADT")


# -- values kept as written ---------------------------------------------------------------------

def test_decimal_precision_is_kept() -> None:
    obs = ('{"resourceType": "Observation", "id": "o", "status": "final",'
           ' "code": {"text": "Hb"}, "subject": {"identifier": {"value": "1"}},'
           ' "valueQuantity": {"value": 7.20, "unit": "g/dL"},'
           ' "referenceRange": [{"low": {"value": 12.0}, "high": {"value": 1.50e1}}]}')
    msg = Message.parse(run_text(obs))
    assert msg["OBX-5"] == "7.20"  # before: 7.2
    assert msg["OBX-7"] == "12.0-15.0"


PHONES = {**ANN, "telecom": [
    {"system": "phone", "value": "(555)555-1234X12", "use": "home"},
    {"system": "phone", "value": "+44 20 7946 0000", "use": "mobile"},
    {"system": "email", "value": "ann@example.org"}]}


@pytest.mark.parametrize("version", ["2.3.1", "2.4"])
def test_telecoms_use_the_components_of_older_versions(version: str) -> None:
    text = run(PHONES, version=version)
    strict(text)
    home, mobile, email = Message.parse(text).repetitions("PID-13")
    assert home.split("^") == ["(555)555-1234X12", "PRN", "PH", "", "", "555", "5551234", "12"]
    # before: "+44..." is no TN, XTN.1 was dropped and XTN.12 does not exist: the number was lost
    assert mobile.split("^") == ["", "PRN", "CP", "", "44", "20", "79460000", "",
                                 "+44 20 7946 0000"]
    assert email.split("^") == ["", "NET", "Internet", "ann@example.org"]


def test_telecoms_from_2_5_keep_the_unformatted_number() -> None:
    home, mobile, _ = Message.parse(run(PHONES, version="2.5.1")).repetitions("PID-13")
    assert home.split("^")[11] == "(555)555-1234X12"
    assert mobile.split("^")[0] == "+44 20 7946 0000"
    assert mobile.split("^")[11] == "+44 20 7946 0000"


@pytest.mark.parametrize(("version", "charset"), [("2.5.1", "UNICODE UTF-8"),
                                                   ("2.6", "UNICODE UTF-8"),
                                                   ("2.4", "UNICODE"), ("2.3.1", "UNICODE")])
def test_msh_18_names_the_character_set_when_the_text_is_not_ascii(version: str,
                                                                     charset: str) -> None:
    zoe = {**ANN, "name": [{"family": "Zoë", "given": ["Ann"]}]}
    text = run(zoe, version=version)
    msg = Message.parse(text.encode("utf-8"))
    assert msg["MSH-18"] == charset
    assert msg["PID-5.1"] == "Zoë"
    assert Message.parse(run(ANN, version=version))["MSH-18"] == ""  # ASCII: nothing said


def test_msh_18_names_the_codec_the_engine_writes_an_hl7_channels_body_in() -> None:
    # in an HL7 v2 channel the body is written in the received message's codec (here Latin-1):
    # MSH-18 must say so, not UTF-8
    received = Message.parse(b"MSH|^~\\&|A|F|||20240101||ADT^A08|C1|P|2.5.1||||||8859/1\r"
                             b"PID|1||42^^^F^MR||Zo\xeb\r")
    state = StepState(received, orjson.dumps({**ANN, "name": [{"family": "Zoë"}]}).decode())
    FhirToHl7v2(FhirToHl7v2Options.model_validate({}))(state)
    assert state.body is not None
    assert Message.parse(state.body)["MSH-18"] == "8859/1"


# -- through the channel test path (what `conduit test` runs) -----------------------------------

CHANNEL = """\
name: fhir-results
source: {type: fhir, port: 8099, resources: [Observation], bundles: true}
data_type: fhir
transform:
  - fhir-to-hl7v2: {patients: %s}
destinations:
  - {name: out, type: file, path: out}
"""

CASES = """\
tests:
  - name: two patients
    message: two.json
    expect: %s
"""


@pytest.mark.parametrize(("mode", "expect"), [
    ("refuse", "{status: ERROR, reason: 2 patients}"),
    ("split", "{status: TRANSFORMED, destinations: {out: {contains: ['BTS|2', "
              "'PID|1||MRN-ANN', 'PID|1||MRN-BOB', 'OBX|1|NM|2345-7^Glucose^LN||9.9']}}}"),
])
def test_conduit_test_runs_the_step_in_a_channel(tmp_path: Path, mode: str, expect: str) -> None:
    (tmp_path / "c.yaml").write_text(CHANNEL % mode, encoding="utf-8")
    (tmp_path / "two.json").write_bytes(orjson.dumps(TWO))
    (tmp_path / "c.test.yaml").write_text(textwrap.dedent(CASES % expect), encoding="utf-8")
    report = run_tests([tmp_path])
    assert report.cases and report.passed, format_report(report)


def test_conduit_convert_refuses_or_splits(tmp_path: Path) -> None:
    path = tmp_path / "two.json"
    path.write_bytes(orjson.dumps(TWO).replace(b"5.1", b"5.10"))
    refused_ = CliRunner().invoke(main, ["convert", "fhir-to-hl7v2", str(path)])
    assert refused_.exit_code == 1 and "2 patients" in refused_.stderr
    split = CliRunner().invoke(main, ["convert", "fhir-to-hl7v2", "--patients", "split",
                                      "--version", "2.4", str(path)])
    assert split.exit_code == 0, split.output
    lines = [line for line in split.stdout.splitlines() if line]
    assert lines[0].startswith("BHS|") and lines[-1] == "BTS|2"
    assert "OBX|1|NM|2345-7^Glucose^LN||5.10|mmol/L|||||F" in lines
