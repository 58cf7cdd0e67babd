"""HL7 v2 data types -> FHIR data types."""

from __future__ import annotations

from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from conduit.fhir import datatypes as dt
from conduit.fhir.codesystems import system_uri
from conduit.fhir.v2 import Field
from conduit.hl7.message import Separators

SEPS = Separators()


def f(raw: str) -> Field:
    return Field(raw, SEPS, "utf-8")


@pytest.mark.parametrize(("v2", "fhir"), [
    ("2024", "2024"),
    ("202403", "2024-03"),
    ("20240315", "2024-03-15"),
    # a time without an offset and no zone to read it in: its date, never an invented "Z"
    ("2024031514", "2024-03-15"),
    ("202403151430", "2024-03-15"),
    ("20240315143005", "2024-03-15"),
    ("20240315143005.1234", "2024-03-15"),
    ("20240315143005+0215", "2024-03-15T14:30:05+02:15"),
    ("20240315143005-0500", "2024-03-15T14:30:05-05:00"),
    ("20241315", None),
    ("2024-03-15", None),
    ("", None),
])
def test_dtm_keeps_precision_and_zone(v2: str, fhir: str | None) -> None:
    assert dt.datetime_(v2) == fhir


def test_dtm_without_zone_takes_the_given_one() -> None:
    assert dt.datetime_("202401151200", "+01:00") == "2024-01-15T12:00:00+01:00"
    berlin = ZoneInfo("Europe/Berlin")
    assert dt.datetime_("202401151200", berlin) == "2024-01-15T12:00:00+01:00"
    assert dt.datetime_("202407151200", berlin) == "2024-07-15T12:00:00+02:00"


def test_date_and_instant() -> None:
    assert dt.date("19880818112600+0215") == "1988-08-18"
    assert dt.instant("20240315") is None
    assert dt.instant("2024031514") is None  # no zone: not an instant
    assert dt.instant("2024031514", ZoneInfo("UTC")) == "2024-03-15T14:00:00+00:00"
    assert dt.datetime_("20240315143005.1234", "+01:00") == "2024-03-15T14:30:05.1234+01:00"


def test_number_keeps_significant_digits() -> None:
    assert dt.number("7.10") == Decimal("7.10")
    assert dt.number(".5") == Decimal("0.5")
    assert dt.number("-.5") == Decimal("-0.5")
    assert dt.number("1e5") is None
    assert dt.number("abc") is None


@pytest.mark.parametrize(("name", "uri"), [
    ("LN", "http://loinc.org"),
    ("SCT", "http://snomed.info/sct"),
    ("I10", "http://hl7.org/fhir/sid/icd-10-cm"),
    ("RXNORM", "http://www.nlm.nih.gov/research/umls/rxnorm"),
    ("CVX", "http://hl7.org/fhir/sid/cvx"),
    ("UCUM", "http://unitsofmeasure.org"),
    ("HL70005", "http://terminology.hl7.org/CodeSystem/v2-0005"),
    ("HL7-0203", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    ("2.16.840.1.113883.6.1", "urn:oid:2.16.840.1.113883.6.1"),
    ("99LOCAL", None),
    ("", None),
])
def test_code_systems(name: str, uri: str | None) -> None:
    assert system_uri(name) == uri


def test_cwe_both_triplets_and_original_text() -> None:
    cc = dt.codeable(f("8867-4^Heart rate^LN^HR^Pulse^99LOCAL^^^heart beat"))
    assert cc == {"coding": [
        {"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"},
        {"code": "HR", "display": "Pulse"}], "text": "heart beat"}


def test_cwe_table_default_and_text_only() -> None:
    assert dt.codeable(f("M"), "0001") == {"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v2-0001", "code": "M"}]}
    # IG CWE[CodeableConcept]: CWE.2 is coding[1].display even without a code (kept as the
    # text too); no table's system for it, only the one the sender named
    assert dt.codeable(f("^Just words"), "0006") == {"coding": [{"display": "Just words"}],
                                                    "text": "Just words"}
    assert dt.codeable(f("^KNEE-RIGHT AP LAT^L")) == {
        "coding": [{"display": "KNEE-RIGHT AP LAT"}], "text": "KNEE-RIGHT AP LAT"}
    assert dt.codeable(f("^Body height^LN")) == {
        "coding": [{"system": "http://loinc.org", "display": "Body height"}],
        "text": "Body height"}
    assert dt.codeable(f("")) is None


def test_escape_sequences_are_decoded() -> None:
    assert f("A\\T\\E^Accident \\F\\ Emergency")[2] == "Accident | Emergency"
    assert f("A\\T\\E")[1] == "A&E"


def test_xpn() -> None:
    name = dt.name(f("EVERYMAN&&&&Aniston^ADAM^A^III^Dr.^MD^L^^^^^20240101^20241231"))
    assert name == {"family": "EVERYMAN", "given": ["ADAM", "A"], "prefix": ["Dr."],
                    "suffix": ["III", "MD"], "use": "official",
                    "period": {"start": "2024-01-01", "end": "2024-12-31"}}


def test_xad() -> None:
    addr = dt.address(f("1000 Hospital Lane^Ste. 123^Ann Arbor^MI^99999^USA^H^^Washtenaw"))
    assert addr == {"line": ["1000 Hospital Lane", "Ste. 123"], "city": "Ann Arbor",
                    "state": "MI", "postalCode": "99999", "country": "USA",
                    "district": "Washtenaw", "use": "home"}


@pytest.mark.parametrize(("raw", "expected"), [
    ("(555)555-1234^PRN^PH", {"system": "phone", "value": "(555)555-1234", "use": "home"}),
    ("^NET^Internet^a@b.example", {"system": "email", "value": "a@b.example"}),
    ("^PRN^CP^^1^555^5551234^12", {"system": "phone", "value": "+1 (555) 5551234 ext. 12",
                                   "use": "mobile"}),
    ("^WPN^FX^^^^^^^^^5551234", {"system": "fax", "value": "5551234", "use": "work"}),
])
def test_xtn(raw: str, expected: dict[str, str]) -> None:
    assert dt.contact_point(f(raw)) == expected


def test_cx() -> None:
    ident = dt.identifier(f("12345^^^HOSP&2.16.840.1.113883.19.5&ISO^MR"))
    assert ident == {"value": "12345", "system": "urn:oid:2.16.840.1.113883.19.5",
                     "type": {"coding": [{"system":
                                          "http://terminology.hl7.org/CodeSystem/v2-0203",
                                          "code": "MR"}]}}
    local = dt.identifier(f("12345^^^HOSP^MR"))
    assert local is not None
    assert "system" not in local and local["assigner"] == {"display": "HOSP"}
