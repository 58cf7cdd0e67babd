"""The IG's segment maps as the measure: scripts/ig_coverage.py's figures may not fall.

The script counts a row only when converting a fixture (tests/fhir/ig) shows it; the minimums
below are the figures measured when they were last raised, so a change that loses a mapping
fails here, and the README's table must be the script's current output.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from conduit.fhir import vocabulary

ROOT = Path(__file__).resolve().parents[2]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ig_coverage", ROOT / "scripts" /
                                                  "ig_coverage.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("ig_coverage", module)
    spec.loader.exec_module(module)
    return module


ig = _script()

# rows implemented per segment (implemented/total in the README); raise, never lower
MINIMUMS = {
    "MSH": 25, "EVN": 8, "PID": 52, "PD1": 6, "NK1": 22, "PV1": 55, "PV2": 16, "ORC": 56,
    "OBR": 47, "OBX": 71, "NTE": 6, "SPM": 21, "AL1": 13, "IAM": 19, "DG1": 26, "PR1": 19,
    "IN1": 14, "GT1": 0, "MRG": 2, "RXA": 18, "RXR": 2, "SCH": 15, "AIS": 5, "AIL": 4, "AIP": 6,
    "TXA": 15,
}


@pytest.fixture(scope="module")
def results() -> list:
    return ig.coverage()


def test_no_segment_falls_below_its_figure(results: list) -> None:
    got = {r.segment: len(r.implemented) for r in results}
    fallen = {s: (got[s], n) for s, n in MINIMUMS.items() if got[s] < n}
    assert not fallen, f"IG rows implemented (now, before): {fallen}"
    assert set(got) == set(MINIMUMS)


def test_readme_table_is_current(results: list) -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert ig.readme_with(ig.markdown(results), text) == text, \
        "README's IG coverage table is stale: run scripts/ig_coverage.py --readme"


def _row(field: str, path: str, assignment: str = "") -> object:
    return ig.Row("PID[Patient]", field, path, "", assignment)


def test_a_row_counts_only_when_its_field_makes_the_element() -> None:
    messages = ig.fixtures("PID")
    assert ig.verified(_row("PID-8", "gender"), messages, {})
    # maritalStatus is present, but PID-8 does not make it: blanking PID-8 changes nothing
    assert not ig.verified(_row("PID-8", "maritalStatus"), messages, {})
    # the value the row assigns must be the one produced
    assert not ig.verified(_row("PID-8", "gender", '"male"'), messages, {})
    assert ig.verified(_row("PID-8", "gender", '"female"'), messages, {})


def test_extension_rows_are_found_by_their_url() -> None:
    url = "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName"
    urls = {"extension[1]": url}
    messages = ig.fixtures("PID")
    assert ig.verified(_row("PID-6", "extension[1].valueString"), messages, urls)
    # PID-6 does not make any other extension's valueString
    assert not ig.verified(_row("PID-6", "extension[1].valueString"), messages,
                           {"extension[1]": url + "-other"})


def test_vocabulary_comes_from_the_ig_tables() -> None:
    assert vocabulary.code("AdministrativeSex", "F") == "female"
    assert vocabulary.coding("ResultStatus[Non-Queries]", "P") == {
        "system": "http://hl7.org/fhir/diagnostic-report-status", "code": "preliminary",
        "display": "Preliminary"}
    # a code the IG leaves without a FHIR code is absent, not guessed
    assert vocabulary.coding("ResultStatus[Non-Queries]", "A") is None
    assert vocabulary.coding("AdministrativeSex", "") is None


@pytest.mark.parametrize("path", sorted((ROOT / "tests" / "fhir" / "ig").glob("*.hl7")),
                         ids=lambda p: p.stem)
def test_fixture_bundles_are_valid_r4b(path: Path) -> None:
    """Every field filled, every mapping exercised: still a valid Bundle."""
    import orjson

    from conduit.fhir import dumps
    from conduit.fhir.validate import bundle_problems

    text = "\r".join(ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip())
    assert bundle_problems(orjson.loads(dumps(ig._bundle(text)))) == []


def test_fixture_bundles_are_valid_r4_for_npm_fhir(tmp_path: Path) -> None:
    """The same Bundles through the npm ``fhir`` R4 validator (an R4B-only type would fail)."""
    import shutil

    from conduit.fhir import dumps
    from tests.fhir.test_npm_fhir_validator import PEER, _validate

    if shutil.which("node") is None or not (PEER / "node_modules" / "fhir").exists():
        pytest.skip("node or npm fhir missing: run `npm install` in tests/peers/node")
    bundles = {}
    for path in sorted((ROOT / "tests" / "fhir" / "ig").glob("*.hl7")):
        text = "\r".join(ln for ln in path.read_text(encoding="utf-8").splitlines()
                         if ln.strip())
        bundles[path.name] = dumps(ig._bundle(text))
    errors = {name: errs for name, errs in _validate(bundles, tmp_path).items() if errs}
    assert not errors, errors


def test_every_explained_row_is_really_missing(results: list) -> None:
    """An explanation (IG slip, design choice) may not outlive its row's implementation."""
    missing = {(row.map, row.field, row.path) for r in results for row in r.missing}
    stale = [key for key in ig.EXPLAINED if key not in missing]
    assert not stale, f"implemented now, drop from EXPLAINED: {stale}"


def test_every_correction_names_a_row_of_the_ig_and_is_implemented(results: list) -> None:
    """A correction keyed by a row the IG does not have would correct nothing, silently; one
    whose row is missing explains nothing (a missing row's reason belongs in EXPLAINED)."""
    rows = {row.key for maps in ig.SCOPE.values() for name in maps
            for row in ig.ig_rows(name)[0]}
    assert set(ig.CORRECTED) <= rows, set(ig.CORRECTED) - rows
    assert not set(ig.CORRECTED) & set(ig.EXPLAINED)
    assert all(c.reason for c in ig.CORRECTED.values())
    implemented = {row.key for r in results for row in r.corrected}
    assert set(ig.CORRECTED) == implemented, set(ig.CORRECTED) - implemented


def test_a_corrected_row_counts_only_when_converting_fills_the_corrected_target(
        results: list) -> None:
    corrected = {row.key: row for r in results for row in r.corrected}
    row = corrected[("OBX[Observation]", "OBX-19", "extension[2].url")]
    assert row.literal == "http://hl7.org/fhir/StructureDefinition/observation-analysis-date-time"
    assert row.ig_path == "extension[2].url" and row.ig_assignment == ""
    # the same corrected row against a url Conduit does not write is not implemented
    wrong = ig.replace(row, assignment='"http://example.org/not-written"')
    targets = ig.ig_rows("OBX[Observation]")[0]
    assert not ig.verified(wrong, ig.fixtures("OBX"), ig._urls(targets, "OBX-19") | {
        "extension[2]": "http://example.org/not-written"})
    # the field-blanking check still applies: OBX-14 does not make the analysis time
    assert not ig.verified(ig.replace(row, field="OBX-14"), ig.fixtures("OBX"),
                           ig._urls(targets, "OBX-19"))


def test_a_row_made_by_its_field_being_absent_is_shown_by_blanking_it() -> None:
    """MSH-24 not valued (and MSH-3 not): source.endpoint says unknown. Only a fixture without
    MSH-3 shows it; with MSH-3 valued, blanking MSH-24 leaves an endpoint."""
    targets = ig.ig_rows("MSH[MessageHeader]")[0]
    row = next(r for r in targets if r.key == ("MSH[MessageHeader]", "MSH-24",
                                               "source.endpoint.extension.valueCode"))
    urls = ig._urls(targets, "MSH-24")
    with_app = [m for m in ig.fixtures("MSH") if "|ADT^A01^" in m]
    without_app = [m for m in ig.fixtures("MSH") if m.startswith("MSH|^~\\&||")]
    assert with_app and without_app
    assert not ig.verified(row, with_app, urls)
    assert ig.verified(row, without_app, urls)


def test_rows_the_ig_leaves_undecided_are_listed_apart_not_counted(results: list) -> None:
    """SCH-12's type is ``#placer contact#`` in participant-type, which has no such code: the
    code row and its system row are undecided (listed), every other row still counts."""
    rows = [ig.Row("SCH[Appointment]", "SCH-12", "participant[1].type.coding.code", "",
                   "#placer contact#"),
            ig.Row("SCH[Appointment]", "SCH-12", "participant[1].type.coding.system", "",
                   '"http://terminology.hl7.org/CodeSystem/participant-type"'),
            ig.Row("SCH[Appointment]", "SCH-12", "participant[1].actor(Practitioner)", "", "")]
    assert ig.undecided(rows) == rows[:2]
    sch = next(r for r in results if r.segment == "SCH")
    assert {(r.field, r.path) for r in sch.undecided} == {
        ("SCH-12", "participant[1].type.coding.code"),
        ("SCH-12", "participant[1].type.coding.system"),
        ("SCH-16", "participant[2].type.coding.code"),
        ("SCH-16", "participant[2].type.coding.system")}
    assert not set(sch.undecided) & set(sch.implemented + sch.missing)
