"""HL7-aware template filters: dates and code systems."""

from __future__ import annotations

import pytest
import tzlocal

from conduit.hl7.message import Message
from conduit.transforms.template import render_template

MSG = Message.parse("MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.5.1\r"
                    "PID|1||42||DOE^JO||19800229\rOBX|1|NM|2345-7^Glucose^LN||5|||||F||||"
                    "202401020304-0500\r")


def render(source: str, **variables: object) -> str:
    return render_template(source, MSG, variables)


def test_dates() -> None:
    assert render("{{ msg['PID-7'] | fhir_date }}") == "1980-02-29"
    assert render("{{ msg['OBX-14'] | fhir_datetime }}") == "2024-01-02T03:04:00-05:00"
    assert render("{{ msg['PID-7'] | hl7_strftime('%d/%m/%Y') }}") == "29/02/1980"
    assert render("{{ vars.d | hl7_datetime }}", d="2024-01-02T03:04:05+01:00") == \
        "20240102030405+0100"
    assert render("{{ msg['PID-5'] | fhir_date }}|{{ 'x' | hl7_strftime }}") == "|"


def test_a_time_without_offset_is_read_in_a_zone_never_as_utc(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert render("{{ '202407020304' | fhir_datetime('Europe/Berlin') }}") == \
        "2024-07-02T03:04:00+02:00"
    monkeypatch.delenv("CONDUIT_TIMEZONE", raising=False)
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    tzlocal.reload_localzone()
    try:
        # (a variable, not a literal: Jinja folds filters on constants at compile time)
        source = "{{ vars.t | fhir_datetime }}"
        assert render(source, t="202401020304") == "2024-01-02T03:04:00+05:30"
        monkeypatch.setenv("CONDUIT_TIMEZONE", "America/New_York")
        assert render(source, t="202401020304") == "2024-01-02T03:04:00-05:00"
    finally:
        monkeypatch.undo()
        tzlocal.reload_localzone()


def test_code_systems() -> None:
    assert render("{{ msg['OBX-3.3'] | fhir_system }}") == "http://loinc.org"
    assert render("{{ 'http://snomed.info/sct' | hl7_system }}") == "SCT"
    assert render("{{ 'HL70001' | fhir_system }}") == \
        "http://terminology.hl7.org/CodeSystem/v2-0001"
