"""Properties of the v2 <-> FHIR conversions over generated messages (issue 14, item 8).

A generator writes valid synthetic ADT^A01 and ORU^R01 messages: several patients (one message
each, different MRNs), several OBX of NM/ST/CWE/DTM/ED/RP with repeated set ids and codes and
repeated OBX-5 values, times with and without an offset. For every one:

* v2 -> FHIR -> v2 keeps each patient's OBX values under that patient's PID (several patients in
  one Bundle are refused by default, and split one message per patient on request);
* no OBX value is lost, by count and by value, on the way to FHIR and back;
* every reference in a Bundle resolves inside the Bundle (plain and conditional transactions);
* a time sent without an offset is never written as UTC unless the zone in force is UTC.

Examples are few and derandomized (fixed, the same on every run and in CI) so the file runs in
seconds; raise ``max_examples`` locally to search harder.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conduit.fhir import ConvertOptions, convert
from conduit.fhir.attachment import VALUE_ATTACHMENT
from conduit.fhir.tov2 import ConversionError, V2Options, to_hl7v2
from conduit.fhir.v2 import Seg
from conduit.hl7.batch import split_messages
from conduit.hl7.message import Message

Json = dict[str, Any]
Values = Counter[tuple[str, str]]

PROFILE = settings(max_examples=30, derandomize=True, database=None, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow])

# zones and offsets that are never UTC at any date, so a "Z" can only come from a mistake
ZONES = ("America/Chicago", "Asia/Kolkata", "Australia/Sydney", "Europe/Berlin",
         "America/Sao_Paulo")
OFFSETS = ("-0500", "+0100", "+0530", "-0300", "+1000", "-0930")
CODES = ("2093-3", "2571-8", "718-7", "8310-5")  # few codes: OBX repeat set ids and codes
_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(Z|[+-]\d\d:\d\d)$")


# -- the generator --------------------------------------------------------------------------------

@st.composite
def v2_time(draw: st.DrawFn, offset: bool | None = None) -> str:
    """DTM to the minute or second, with a (never zero) offset or without one."""
    text = (f"{draw(st.integers(2000, 2030)):04d}{draw(st.integers(1, 12)):02d}"
            f"{draw(st.integers(1, 28)):02d}{draw(st.integers(0, 23)):02d}"
            f"{draw(st.integers(0, 59)):02d}")
    if draw(st.booleans()):
        text += f"{draw(st.integers(0, 59)):02d}"
    if offset if offset is not None else draw(st.booleans()):
        text += draw(st.sampled_from(OFFSETS))
    return text


def _number() -> st.SearchStrategy[str]:
    """NM as senders write it: ``180``, ``-3``, ``7.20`` (trailing zeros are precision)."""
    whole = st.integers(-999, 99999).map(str)
    digits = st.text(alphabet="0123456789", min_size=1, max_size=2)
    fraction = st.tuples(st.integers(-999, 999), digits).map(lambda t: f"{t[0]}.{t[1]}")
    return st.one_of(whole, fraction)


_WORD = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                min_size=1, max_size=8)
_TEXT = st.lists(_WORD, min_size=1, max_size=3).map(" ".join)
_DOCUMENT = st.binary(min_size=1, max_size=48).map(
    lambda b: "^AP^PDF^Base64^" + base64.b64encode(b).decode("ascii"))
_LINK = _WORD.map(lambda w: f"https://reports.example.org/r/{w}^^AP^PDF")
_CODED = st.tuples(st.sampled_from(("POS", "NEG", "IND", "LOW", "HIGH")), _WORD).map(
    lambda t: f"{t[0]}^{t[1]}^L")


@st.composite
def obx_value(draw: st.DrawFn, kind: str) -> str:
    if kind == "NM":
        return draw(_number())
    if kind == "ST":
        return draw(_TEXT)
    if kind == "CWE":
        return draw(_CODED)
    if kind == "ED":
        return draw(_DOCUMENT)
    if kind == "RP":
        return draw(_LINK)
    return draw(v2_time())


@dataclass
class Sample:
    """One generated message and what it says, for the properties to check against."""

    text: str
    mrn: str
    kind: str
    values: Values = field(default_factory=Counter)


@st.composite
def obx_segments(draw: st.DrawFn) -> tuple[list[str], Values]:
    segments, values = [], Counter[tuple[str, str]]()
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(("NM", "ST", "CWE", "DTM", "ED", "RP")))
        code = draw(st.sampled_from(CODES))
        reps = draw(st.lists(obx_value(kind), min_size=1, max_size=3))
        set_id = draw(st.sampled_from(("", "1", "2")))
        when = draw(st.one_of(st.just(""), v2_time()))
        unit = "mg/dL^mg/dL^UCUM" if kind == "NM" else ""
        segments.append(f"OBX|{set_id}|{kind}|{code}^Test {code}^LN||{'~'.join(reps)}|{unit}"
                        f"|||||F|||{when}")
        for rep in reps:
            values[(code, _norm(kind, rep))] += 1
    return segments, values


@st.composite
def message(draw: st.DrawFn, mrn: str, n: int, kind: str) -> Sample:
    event = "ADT^A01^ADT_A01" if kind == "ADT" else "ORU^R01^ORU_R01"
    family = draw(_WORD).upper()
    head = [f"MSH|^~\\&|LAB|HOSP|EHR|HOSP|{draw(v2_time())}||{event}|MSG{n}{mrn}|P|2.5.1",
            *([f"EVN|A01|{draw(v2_time())}"] if kind == "ADT" else []),
            f"PID|1||{mrn}^^^HOSP^MR||{family}^PAT||19800101|F"]
    if kind == "ADT":
        head.append("PV1|1|I|WARD^1^1")
    else:
        head.append(f"OBR|1|PL{n}|FL{n}^LAB|24331-1^Panel^LN|||{draw(v2_time())}")
    obx, values = draw(obx_segments())
    return Sample("\r".join([*head, *obx]) + "\r", mrn, kind, values)


@st.composite
def patients(draw: st.DrawFn) -> list[Sample]:
    """1-3 messages of one kind (ADT^A01 or ORU^R01), each about another patient."""
    kind = draw(st.sampled_from(("ADT", "ORU")))
    mrns = draw(st.lists(st.integers(1000, 99999).map(lambda i: f"MRN{i}"), min_size=1,
                         max_size=3, unique=True))
    return [draw(message(mrn, n, kind)) for n, mrn in enumerate(mrns)]


# -- reading values back --------------------------------------------------------------------------

def _norm(kind: str, value: str) -> str:
    """The comparable form of one OBX-5 value: a code, a number as written, the local digits of
    a time (padded to seconds: FHIR has no minute precision), an ED's data, an RP's pointer,
    text as is."""
    if kind in ("CWE", "CE", "RP"):
        return value.split("^", 1)[0]
    if kind == "ED":
        return value.split("^")[4]
    if kind in ("DTM", "TS"):
        digits = re.match(r"\d+", value)
        return (digits.group(0) if digits else value).ljust(14, "0")
    return value


def obx_values(msg: Message) -> Values:
    found: Values = Counter()
    for segment in msg.segments("OBX"):
        seg = Seg(segment, "utf-8")
        kind, code = seg[2].upper(), seg.field(3)[1]
        for rep in seg.reps(5):
            if kind in ("ST", "TX", "FT"):
                for line in rep.text().split("\n"):
                    found[(code, line)] += 1
            else:
                found[(code, _norm(kind, rep.raw))] += 1
    return found


def v2_by_patient(text: str) -> dict[str, Values]:
    """The OBX values of each message of ``text`` (one message or a batch), by PID-3.1."""
    out: dict[str, Values] = {}
    for one in split_messages(text):
        msg = Message.parse(one)
        mrn = msg["PID-3.1"]
        out[mrn] = out.get(mrn, Counter()) + obx_values(msg)
    return out


def merged(bundles: list[Json]) -> Json:
    """One transaction Bundle holding every entry of ``bundles`` (shared ones once)."""
    entries: dict[str, Json] = {}
    for b in bundles:
        for e in b["entry"]:
            entries.setdefault(e["fullUrl"], e)
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries.values())}


# -- the properties -------------------------------------------------------------------------------

@PROFILE
@given(patients())
def test_v2_fhir_v2_keeps_each_patients_values_under_that_patient(samples: list[Sample]) -> None:
    bundles = [convert(Message.parse(s.text)) for s in samples]
    expected = {s.mrn: s.values for s in samples}
    for sample, bundle in zip(samples, bundles, strict=True):
        assert v2_by_patient(to_hl7v2(bundle)) == {sample.mrn: sample.values}
    together = merged(bundles)
    if len(samples) > 1:
        with pytest.raises(ConversionError, match="patients"):
            to_hl7v2(together)
    assert v2_by_patient(to_hl7v2(together, V2Options(patients="split"))) == expected


@PROFILE
@given(patients())
def test_no_obx_value_is_lost_on_the_way_to_fhir(samples: list[Sample]) -> None:
    for sample in samples:
        bundle = convert(Message.parse(sample.text))
        observations = [e["resource"] for e in bundle["entry"]
                        if e["resource"]["resourceType"] == "Observation"]
        patient = next(e["fullUrl"] for e in bundle["entry"]
                       if e["resource"]["resourceType"] == "Patient")
        for obs in observations:
            assert f"urn:uuid:{obs['subject']['reference'].split('/')[-1]}" == patient
        source_obx = sum(1 for line in sample.text.split("\r") if line.startswith("OBX|"))
        assert len(observations) == source_obx
        found = Counter[tuple[str, str]]()
        for obs in observations:
            code = obs["code"]["coding"][0]["code"]
            for part in obs.get("component") or [obs]:
                found.update((code, v) for v in _fhir_values(part))
            found.update((code, a.get("data") or a["url"]) for a in _attachments(obs))
        assert found == sample.values


def _attachments(obs: Json) -> list[Json]:
    return [x["valueAttachment"] for x in obs.get("extension", ())
            if x["url"] == VALUE_ATTACHMENT]


def _fhir_values(part: Json) -> list[str]:
    if "valueQuantity" in part:
        return [str(part["valueQuantity"]["value"])]
    if "valueString" in part:
        return part["valueString"].split("\n")
    if "valueCodeableConcept" in part:
        return [part["valueCodeableConcept"]["coding"][0]["code"]]
    if "valueDateTime" in part:
        return [_norm("DTM", re.sub(r"\D", "", part["valueDateTime"][:19]))]
    return []


@PROFILE
@given(patients(), st.booleans())
def test_every_reference_resolves_inside_the_bundle(samples: list[Sample],
                                                    conditional: bool) -> None:
    for sample in samples:
        bundle = convert(Message.parse(sample.text), ConvertOptions(conditional=conditional))
        known = {e["fullUrl"] for e in bundle["entry"]} | {
            f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
        for reference in _references(bundle):
            assert reference in known, reference


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return own + [r for v in node.values() for r in _references(v)]
    if isinstance(node, list):
        return [r for v in node for r in _references(v)]
    return []


def _times(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [t for v in node.values() for t in _times(v)]
    if isinstance(node, list):
        return [t for v in node for t in _times(v)]
    return [node] if isinstance(node, str) and _TIME.match(node) else []


@contextlib.contextmanager
def host_zone(name: str | None) -> Iterator[None]:
    """The host's zone is ``name`` (``TZ``) for the duration; None leaves the host's own."""
    if name is None:
        yield
        return
    import tzlocal

    before = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    tzlocal.reload_localzone()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()
        tzlocal.reload_localzone()


@PROFILE
@given(patients(), st.sampled_from(("channel", "engine", "host", "none")),
       st.sampled_from(ZONES))
def test_a_time_without_offset_is_never_written_as_utc(samples: list[Sample], where: str,
                                                       zone: str) -> None:
    """Every generated offset and zone is never UTC, so a ``Z``/``+00:00`` in the Bundle can
    only be a time sent without an offset and labelled UTC. The zone comes from the channel,
    the engine default, or the host (``TZ`` set to ``zone``); with nothing configured on this
    machine it is allowed only when the host's zone is UTC (no offset, no daylight saving)."""
    options = {"channel": ConvertOptions(timezone=zone),
               "engine": ConvertOptions(default_timezone=zone)}.get(where, ConvertOptions())
    with host_zone(zone if where == "host" else None):
        utc_in_force = where == "none" and time.timezone == 0 and not time.daylight
        bundles = [convert(Message.parse(sample.text), options) for sample in samples]
    for bundle in bundles:
        times = _times(bundle)
        assert times, "the generator always writes times"
        if not utc_in_force:
            assert [t for t in times if t.endswith(("Z", "+00:00"))] == []
