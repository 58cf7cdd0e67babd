"""``conduit test``: traces and channel tests, sending nothing."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from conduit.cli import main

ROOT = Path(__file__).resolve().parents[2]
CHANNEL = ROOT / "channels" / "adt-to-file.yaml"
MESSAGES = ROOT / "examples" / "messages"


def test_trace_shows_each_stage_of_each_message() -> None:
    result = CliRunner().invoke(main, ["test", str(CHANNEL), str(MESSAGES / "adt_a03.hl7"),
                                       str(MESSAGES / "oru_r01.hl7")])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"=== {MESSAGES / 'adt_a03.hl7'}: TRANSFORMED" in out
    assert "--- filter: passed: MSH-9.1 is 'ADT'" in out
    assert "--- after step 1 (set PID-5.1)\n" in out
    assert "--- destination archive\nMSH|" in out
    assert "--- destination downstream: filtered: MSH-9.2 is 'A03', expected one of" in out
    assert f"=== {MESSAGES / 'oru_r01.hl7'}: FILTERED (MSH-9.1 is 'ORU', expected 'ADT')" in out
    assert "\r" not in out


def test_runs_channel_tests_in_a_folder() -> None:
    result = CliRunner().invoke(main, ["test", str(ROOT / "channels")])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("PASS ")
    assert result.stdout.rstrip().endswith("passed, 0 failed")


def test_a_channel_file_alone_runs_its_tests() -> None:
    result = CliRunner().invoke(main, ["test", str(CHANNEL)])
    assert result.exit_code == 0, result.output
    assert "adt-to-file.test.yaml" in result.stdout


def test_a_failing_case_exits_1_with_a_diff(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(CHANNEL.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "c.test.yaml").write_text(
        "tests:\n  - name: wrong\n    message: |\n      MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\n"
        "      PID|1||7||X\n"
        "    expect:\n      destinations:\n        archive: {equals: 'MSH|x'}\n",
        encoding="utf-8")
    result = CliRunner().invoke(main, ["test", str(tmp_path)])
    assert result.exit_code == 1
    assert "FAIL" in result.stdout and "content differs" in result.stdout
    assert "-MSH|x" in result.stdout


def test_a_broken_channel_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["test", str(bad), str(MESSAGES / "adt_a01.hl7")])
    assert result.exit_code == 1
    assert f"{bad}:1: source: is required but missing" in result.stderr


def test_garbage_message_is_shown_as_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.hl7"
    junk.write_bytes(b"not hl7")
    result = CliRunner().invoke(main, ["test", str(CHANNEL), str(junk)])
    assert result.exit_code == 0
    assert f"=== {junk}: ERROR (not an HL7 v2 message" in result.stdout


def test_destination_paths_are_rendered_in_traces_and_tests(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        "name: c\nsource: {type: mllp, port: 2575}\ndestinations:\n"
        "  - {name: good, type: file, path: \"out/{{ msg['MSH-9.1'] }}/{{ msg['MSH-10'] }}.hl7\"}\n"
        "  - {name: bad, type: file, path: \"out/{{ msg['PID-3.1'] ~ nope }}.hl7\"}\n",
        encoding="utf-8")
    (tmp_path / "c.test.yaml").write_text(
        "tests:\n  - name: admit\n    message: ../examples/messages/adt_a01.hl7\n"
        "    expect:\n      destinations:\n        good: {path_ends_with: out/ADT/MSG00001.hl7}\n",
        encoding="utf-8")
    (tmp_path / "c.test.yaml").write_text(
        (tmp_path / "c.test.yaml").read_text().replace("../examples", str(ROOT / "examples")))
    traced = CliRunner().invoke(main, ["test", str(tmp_path / "c.yaml"),
                                       str(MESSAGES / "adt_a01.hl7")])
    assert traced.exit_code == 0, traced.output
    assert "--- destination good path: out/ADT/MSG00001.hl7" in traced.stdout
    assert ("--- destination bad path: file path template failed: UndefinedError: "
            "'nope' is undefined") in traced.stdout
    tested = CliRunner().invoke(main, ["test", str(tmp_path)])
    assert tested.exit_code == 1, tested.output
    assert ("    destination bad: file path template failed: UndefinedError: 'nope' is undefined"
            in tested.stdout)
    assert "destination good" not in tested.stdout
