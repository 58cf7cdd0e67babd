"""Times are never mislabelled (issue 14 item 4): a v2 time without an offset is the sender's
local time, in the zone the step, the channel, MSH-7, the engine default or the host names, in
that order; it is never written as UTC (``Z``), and a date keeps its precision."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import tzlocal

from conduit.core.errors import ConfigError
from conduit.core.timezone import effective_zone, host_zone
from conduit.engine.loader import load_channel
from conduit.engine.pipeline import Pipeline
from conduit.engine.settings import load_settings
from conduit.fhir import ConvertOptions, convert, dumps
from conduit.fhir.datatypes import datetime_, instant
from conduit.hl7.message import Message

Json = dict[str, Any]

# OBX-14 in winter and in summer, OBR-7 to the minute, PID-7 a date, MSH-7 without an offset
ORU = ("MSH|^~\\&|LIS|FACA|EHR|HOSP|20240102040506||ORU^R01^ORU_R01|MSG1|P|2.5.1\r"
       "PID|1||12345^^^^MR||DOE^JANE||19800101|F\r"
       "OBR|1|ORD7|FIL7|GLU^Glucose^LN|||202401150830\r"
       "OBX|1|NM|GLU^Glucose^LN||5.4|mmol/L|||||F|||20240115083000\r"
       "OBX|2|NM|GLU^Glucose^LN||5.9|mmol/L|||||F|||20240715083000\r")

_NO_OFFSET_Z = re.compile(rb'"\d{4}-\d{2}-\d{2}T[0-9:.]+Z"')


@pytest.fixture
def host_in_tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The host's zone (TZ) is Asia/Tokyo for this test, whatever the machine's is."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    monkeypatch.delenv("CONDUIT_TIMEZONE", raising=False)
    tzlocal.reload_localzone()
    yield
    monkeypatch.undo()
    tzlocal.reload_localzone()


def _times(bundle: Json) -> dict[str, str]:
    report = next(e["resource"] for e in bundle["entry"]
                  if e["resource"]["resourceType"] == "DiagnosticReport")
    observations = [e["resource"] for e in bundle["entry"]
                    if e["resource"]["resourceType"] == "Observation"]
    patient = next(e["resource"] for e in bundle["entry"]
                   if e["resource"]["resourceType"] == "Patient")
    return {"report": report["effectiveDateTime"], "winter": observations[0]["effectiveDateTime"],
            "summer": observations[1]["effectiveDateTime"], "birth": patient["birthDate"],
            "sent": bundle["timestamp"]}


def test_a_zone_that_is_not_the_hosts_gives_its_offset_with_daylight_saving(
        host_in_tokyo: None) -> None:
    assert host_zone() == "Asia/Tokyo"
    times = _times(convert(Message.parse(ORU), ConvertOptions(timezone="America/New_York")))
    assert times == {"report": "2024-01-15T08:30:00-05:00",
                     "winter": "2024-01-15T08:30:00-05:00",
                     "summer": "2024-07-15T08:30:00-04:00",
                     "birth": "1980-01-01", "sent": "2024-01-02T04:05:06-05:00"}


def test_without_any_configured_zone_the_hosts_zone_is_used_not_utc(
        host_in_tokyo: None) -> None:
    times = _times(convert(Message.parse(ORU)))
    assert times["winter"] == "2024-01-15T08:30:00+09:00"


def test_engine_default_zone_comes_before_the_host(host_in_tokyo: None,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONDUIT_TIMEZONE", "Europe/Berlin")
    assert effective_zone(None) == ("Europe/Berlin", "the engine default")
    assert effective_zone("America/Chicago") == ("America/Chicago", "the channel")
    monkeypatch.delenv("CONDUIT_TIMEZONE")
    assert effective_zone(None) == ("Asia/Tokyo", "the host")


def test_msh7_offset_is_used_unless_the_zone_agrees_with_it(host_in_tokyo: None) -> None:
    text = ORU.replace("|20240102040506|", "|20240102040506-0600|")
    assert _times(convert(Message.parse(text)))["winter"] == "2024-01-15T08:30:00-06:00"
    # a named zone is the sender's clock across daylight saving; MSH-7's offset is one day's
    named = _times(convert(Message.parse(text), ConvertOptions(timezone="America/Chicago")))
    assert named["summer"] == "2024-07-15T08:30:00-05:00"
    # a zone MSH-7 contradicts (-06:00 is not Berlin's offset that day): the sender's word wins
    wrong = _times(convert(Message.parse(text), ConvertOptions(timezone="Europe/Berlin")))
    assert wrong["summer"] == "2024-07-15T08:30:00-06:00"


def test_no_time_without_an_offset_is_ever_written_as_z(host_in_tokyo: None) -> None:
    for options in (None, ConvertOptions(timezone="UTC"),
                    ConvertOptions(default_timezone="Etc/UTC")):
        body = dumps(convert(Message.parse(ORU), options))
        assert not _NO_OFFSET_Z.search(body), body
    assert b"+00:00" in dumps(convert(Message.parse(ORU), ConvertOptions(timezone="UTC")))
    # what the sender wrote as an offset stays that offset
    assert datetime_("20240115083000+0000", None) == "2024-01-15T08:30:00+00:00"


def test_dates_and_partial_times_keep_their_precision() -> None:
    assert datetime_("2024", "Europe/Berlin") == "2024"
    assert datetime_("202401", "Europe/Berlin") == "2024-01"
    assert datetime_("20240115", "Europe/Berlin") == "2024-01-15"
    assert datetime_("2024011508", "+01:00") == "2024-01-15T08:00:00+01:00"
    # no zone known at all: the date, never an invented offset
    assert datetime_("20240115083000", None) == "2024-01-15"
    assert instant("20240115083000", None) is None


def test_the_channel_zone_reaches_the_conversion(tmp_path: Path, host_in_tokyo: None) -> None:
    channel = tmp_path / "lab.yaml"
    channel.write_text(
        "name: lab\ntimezone: America/New_York\nsource: {type: mllp, port: 2575}\n"
        "transform:\n  - hl7v2-to-fhir: {}\n"
        "destinations:\n  - {name: out, type: file, path: out.json}\n", encoding="utf-8")
    result = Pipeline(load_channel(channel)).process(ORU.encode())
    assert result.status != "ERROR", result.reason
    bundle = orjson.loads(result.routes[0].content or b"")
    assert _times(bundle)["summer"] == "2024-07-15T08:30:00-04:00"
    # without the channel key: the engine default given to the pipeline, before the host
    channel.write_text(channel.read_text().replace("timezone: America/New_York\n", ""))
    result = Pipeline(load_channel(channel), default_zone="Europe/Berlin").process(ORU.encode())
    assert _times(orjson.loads(result.routes[0].content or b""))["summer"] == \
        "2024-07-15T08:30:00+02:00"
    result = Pipeline(load_channel(channel)).process(ORU.encode())
    assert _times(orjson.loads(result.routes[0].content or b""))["summer"] == \
        "2024-07-15T08:30:00+09:00"


def test_the_engine_default_zone_is_a_checked_setting(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    monkeypatch.delenv("CONDUIT_CONFIG", raising=False)
    monkeypatch.setenv("CONDUIT_TIMEZONE", "Europe/Berlin")
    assert load_settings().timezone == "Europe/Berlin"
    monkeypatch.delenv("CONDUIT_TIMEZONE")
    config = tmp_path / "settings.yaml"
    config.write_text("timezone: America/Chicago\n", encoding="utf-8")
    assert load_settings(config).timezone == "America/Chicago"
    config.write_text("timezone: Mars/Olympus\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        load_settings(config)
