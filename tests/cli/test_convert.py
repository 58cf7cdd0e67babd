"""``conduit convert hl7v2-to-fhir`` / ``fhir-to-hl7v2``."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner

from conduit.cli import main
from tests.samples import ADT_A01, ORU_R01, sample


def test_one_bundle_per_message_of_a_file(tmp_path: Path) -> None:
    two = tmp_path / "two.hl7"
    two.write_text(ADT_A01 + ORU_R01.replace("\r", "\n"), encoding="utf-8")
    result = CliRunner().invoke(main, ["convert", "hl7v2-to-fhir", "--compact", str(two)])
    assert result.exit_code == 0, result.output
    bundles = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [b["identifier"]["value"] for b in bundles] == ["MSG00001", "MSG00002"]
    assert all(b["type"] == "transaction" for b in bundles)


def test_batch_file_validated_and_indented(tmp_path: Path) -> None:
    path = tmp_path / "batch.hl7"
    path.write_bytes(sample("python-hl7/sample_batch.hl7"))
    result = CliRunner().invoke(main, ["convert", "hl7v2-to-fhir", "--validate",
                                       "--bundle", "batch", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith('{\n  "resourceType": "Bundle"')
    assert '"type": "batch"' in result.stdout


def test_bad_input_is_reported_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.hl7"
    bad.write_text("PID|1||MRN-SECRET-7\r", encoding="utf-8")
    result = CliRunner().invoke(main, ["convert", "hl7v2-to-fhir", str(bad)])
    assert result.exit_code == 1
    assert str(bad) in result.stderr
    assert "MRN-SECRET-7" not in result.stderr  # the value (PHI) is never echoed


def test_bad_timezone_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "a.hl7"
    path.write_text(ADT_A01, encoding="utf-8")
    result = CliRunner().invoke(main, ["convert", "hl7v2-to-fhir", "--timezone", "Nowhere/X",
                                       str(path)])
    assert result.exit_code == 2
    assert "unknown time zone" in result.stderr


def test_fhir_to_hl7v2_prints_one_message_per_resource(tmp_path: Path) -> None:
    bundles = tmp_path / "bundles.ndjson"
    first = CliRunner().invoke(main, ["convert", "hl7v2-to-fhir", "--compact",
                                      str(_write(tmp_path, ADT_A01 + ORU_R01))])
    bundles.write_text(first.stdout, encoding="utf-8")
    result = CliRunner().invoke(main, ["convert", "fhir-to-hl7v2", "--version", "2.4",
                                       str(bundles)])
    assert result.exit_code == 0, result.output
    headers = [line for line in result.stdout.splitlines() if line.startswith("MSH")]
    assert [h.split("|")[8] for h in headers] == ["ADT^A08^ADT_A01", "ORU^R01^ORU_R01"]
    assert all(h.split("|")[11] == "2.4" for h in headers)


def test_fhir_to_hl7v2_reports_what_it_cannot_convert(tmp_path: Path) -> None:
    path = tmp_path / "org.json"
    path.write_text('{"resourceType": "Organization", "id": "x"}', encoding="utf-8")
    result = CliRunner().invoke(main, ["convert", "fhir-to-hl7v2", str(path)])
    assert result.exit_code == 1
    assert "nothing to write" in result.stderr


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "in.hl7"
    path.write_text(text, encoding="utf-8")
    return path
