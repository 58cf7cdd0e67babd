"""Channel tests (*.test.yaml): the runner, its expectations, and the shipped channels' tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

from conduit.engine.channeltest import find_test_files, format_report, run_tests, trace_text
from conduit.engine.loader import load_channel
from conduit.engine.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[2]

CHANNEL = """\
name: t
source: {type: mllp, port: 2575}
filter: {field: MSH-9.1, equals: ADT}
transform:
  - set: {field: PID-5.1, value: "{{ msg['PID-5.1'] | upper }}"}
destinations:
  - {name: archive, type: file, path: x}
  - {name: downstream, type: mllp, host: h, port: 1, when: {field: MSH-9.2, equals: A01}}
"""

MESSAGE = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|C1|P|2.5\rPID|1||42||doe^jo\r"


def setup(tmp_path: Path, tests: str) -> Path:
    (tmp_path / "t.yaml").write_text(CHANNEL, encoding="utf-8")
    (tmp_path / "m.hl7").write_bytes(MESSAGE.encode())
    test_file = tmp_path / "t.test.yaml"
    test_file.write_text(textwrap.dedent(tests), encoding="utf-8")
    return test_file


def test_the_shipped_channels_pass_their_tests() -> None:
    report = run_tests([ROOT / "channels"])
    assert report.cases, "no shipped channel tests found"
    assert report.passed, format_report(report)


def test_every_shipped_channel_has_tests() -> None:
    channels = sorted(p for p in (ROOT / "channels").glob("*.yaml")
                      if not p.name.endswith(".test.yaml"))
    assert channels
    for channel in channels:
        assert channel.with_name(channel.stem + ".test.yaml").is_file(), channel
        first = channel.read_text(encoding="utf-8").splitlines()[0]
        assert first == ("# yaml-language-server: "
                         "$schema=../conduit/engine/schema/channel.schema.json")


def test_passing_expectations(tmp_path: Path) -> None:
    test_file = setup(tmp_path, """\
        tests:
          - name: file message
            message: m.hl7
            expect:
              status: TRANSFORMED
              filtered: false
              fields: {PID-5.1: DOE}
              destinations:
                archive:
                  contains: ["DOE^jo"]
                  not_contains: ["doe"]
                  equals: |
                    MSH|^~\\&|A|B|C|D|20240101||ADT^A01|C1|P|2.5
                    PID|1||42||DOE^jo
                  equals_file: expected.hl7
                  fields: {MSH-10: C1}
                downstream: {filtered: false}
          - name: inline message, CRLF line ends
            message: "MSH|^~\\\\&|A|B|C|D|20240101||ADT^A08|C2|P|2.5\\r\\nPID|1||7\\r\\n"
            expect:
              destinations:
                downstream: {filtered: true}
          - name: filtered
            message: |
              MSH|^~\\&|A|B|C|D|20240101||ORU^R01|C3|P|2.5
            expect: {filtered: true, reason: "'ORU', expected 'ADT'"}
        """)
    (tmp_path / "expected.hl7").write_text(MESSAGE.replace("doe", "DOE").replace("\r", "\n"),
                                           encoding="utf-8")
    report = run_tests([test_file])
    assert report.passed, format_report(report)
    assert len(report.cases) == 3


def test_failures_say_what_did_not_hold_with_a_diff(tmp_path: Path) -> None:
    test_file = setup(tmp_path, """\
        tests:
          - name: wrong expectations
            message: m.hl7
            expect:
              filtered: true
              fields: {PID-5.1: doe}
              destinations:
                archive:
                  contains: [NOPE]
                  equals: |
                    MSH|^~\\&|A|B|C|D|20240101||ADT^A01|C1|P|2.5
                    PID|1||42||SMITH^jo
                downstream: {filtered: true}
                missing: {filtered: true}
        """)
    report = run_tests([tmp_path])
    assert not report.passed
    (case,) = report.cases
    text = "\n".join(case.failures)
    assert "expected the channel filter to stop it; status is TRANSFORMED" in text
    assert "message: PID-5.1 is 'DOE', expected 'doe'" in text
    assert "destination archive: does not contain 'NOPE'" in text
    assert "-PID|1||42||SMITH^jo\n+PID|1||42||DOE^jo" in text
    assert "destination downstream: expected its when-filter to stop it" in text
    assert "destination missing: the channel has no such destination" in text
    out = format_report(report)
    assert out.startswith(f"FAIL {test_file}: wrong expectations\n    ")
    assert out.endswith("0 passed, 1 failed")


def test_filtered_false_means_it_passed(tmp_path: Path) -> None:
    test_file = setup(tmp_path, """\
        tests:
          - name: not hl7
            message: |
              garbage
            expect: {filtered: false}
          - name: filtered
            message: |
              MSH|^~\\&|A|B|C|D|20240101||ORU^R01|C3|P|2.5
            expect: {filtered: false}
        """)
    first, second = run_tests([test_file]).cases
    assert first.failures[0].startswith("expected it to pass; status is ERROR (not an HL7 v2")
    assert second.failures == ["the channel filter stopped it: MSH-9.1 is 'ORU', expected 'ADT'"]


def test_problems_in_test_files_are_reported_with_lines(tmp_path: Path) -> None:
    test_file = setup(tmp_path, """\
        tests:
          - name: typo
            mesage: m.hl7
          - name: no such file
            message: nope.hl7
        """)
    report = run_tests([test_file])
    assert not report.passed
    assert report.problems == [
        f"{test_file}:2: tests[0].message: is required but missing",
        f"{test_file}:3: tests[0].mesage: unknown key (did you mean 'message'?)",
        f"{test_file}:5: tests[1].message: message file "
        f"{str(tmp_path / 'nope.hl7')!r} not found",
    ]


def test_a_broken_channel_is_a_problem(tmp_path: Path) -> None:
    test_file = setup(tmp_path, "tests: [{name: x, message: m.hl7}]\n")
    (tmp_path / "t.yaml").write_text(CHANNEL.replace("mllp", "mlp", 1), encoding="utf-8")
    report = run_tests([test_file])
    assert report.problems == [
        f"{tmp_path / 't.yaml'}:2: source.type: unknown source type 'mlp' (did you mean 'mllp'?)"]


def test_finding_test_files(tmp_path: Path) -> None:
    setup(tmp_path, "tests: []\n")
    assert find_test_files([tmp_path]) == [tmp_path / "t.test.yaml"]
    assert find_test_files([tmp_path / "t.yaml"]) == [tmp_path / "t.test.yaml"]
    assert run_tests([tmp_path / "empty-dir-does-not-exist"]).problems


def test_trace_text_is_readable(tmp_path: Path) -> None:
    setup(tmp_path, "tests: []\n")
    pipeline = Pipeline(load_channel(tmp_path / "t.yaml", env={}))
    text = trace_text("m.hl7", pipeline.process(MESSAGE.encode(), trace=True))
    assert text.splitlines()[:4] == [
        "=== m.hl7: TRANSFORMED",
        "--- raw",
        "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|C1|P|2.5",
        "PID|1||42||doe^jo",
    ]
    assert "--- filter: passed: MSH-9.1 is 'ADT'" in text
    assert "--- after step 1 (set PID-5.1)\n" in text
    assert "--- destination archive\nMSH|" in text
