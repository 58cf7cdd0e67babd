"""``conduit validate``."""

from __future__ import annotations

from pathlib import Path

import pytest
import tzlocal
from click.testing import CliRunner

from conduit.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_channels_are_valid() -> None:
    result = CliRunner().invoke(main, ["validate", str(ROOT / "channels")])
    assert result.exit_code == 0, result.output
    shipped = [p for p in (ROOT / "channels").glob("*.yaml")
               if not p.name.endswith(".test.yaml")]
    lines = result.output.splitlines()
    assert lines[-1] == f"ok: {len(shipped)} channel{'s' if len(shipped) != 1 else ''}"
    assert len(lines) == len(shipped) + 1
    fhir = next(line for line in lines if line.endswith("adt-to-fhir.yaml (timezone "
                                                        "America/New_York from the channel)"))
    assert fhir.startswith("ok: ")


def test_the_zone_in_effect_is_shown_with_where_it_comes_from(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, zone, port in (("berlin", "timezone: Europe/Berlin\n", 2575), ("plain", "", 2576)):
        (tmp_path / f"{name}.yaml").write_text(
            f"name: {name}\n{zone}source: {{type: mllp, port: {port}}}\n"
            "destinations:\n  - {name: a, type: file, path: x}\n", encoding="utf-8")
    monkeypatch.delenv("CONDUIT_CONFIG", raising=False)
    monkeypatch.setenv("CONDUIT_TIMEZONE", "Asia/Tokyo")
    result = CliRunner().invoke(main, ["validate", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"ok: {tmp_path / 'berlin.yaml'} (timezone Europe/Berlin from the channel)",
        f"ok: {tmp_path / 'plain.yaml'} (timezone Asia/Tokyo from the engine default)",
        "ok: 2 channels"]
    monkeypatch.delenv("CONDUIT_TIMEZONE")
    monkeypatch.setenv("TZ", "America/Sao_Paulo")
    tzlocal.reload_localzone()
    try:
        result = CliRunner().invoke(main, ["validate", str(tmp_path / "plain.yaml")])
    finally:
        monkeypatch.undo()
        tzlocal.reload_localzone()
    assert "(timezone America/Sao_Paulo from the host)" in result.output


def test_an_unknown_zone_is_a_problem_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsource: {type: mllp, port: 2575}\ntimezone: Europe/Berln\n"
                   "destinations:\n  - {name: a, type: file, path: x}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(bad)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{bad}:3: timezone: unknown time zone 'Europe/Berln': use an IANA name "
        "(did you mean 'Europe/Berlin'?)"]


def test_problems_are_printed_with_file_and_line_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsource: {type: mllp, port: 2575}\n"
                   "destinations:\n  - {name: a, type: file, pth: x}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(bad)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{bad}:4: destinations[0].path: is required but missing",
        f"{bad}:4: destinations[0].pth: unknown key (did you mean 'path'?)",
    ]
    assert "2 problems" in result.stderr


def test_a_missing_file_is_a_problem(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "nope.yaml: no such file or directory" in result.output


def test_paths_are_required() -> None:
    assert CliRunner().invoke(main, ["validate"]).exit_code == 2


def test_an_unknown_template_filter_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsource: {type: mllp, port: 2575}\ntransform:\n"
                   "  - set: {field: PID-5.1, value: \"{{ msg['PID-5.1'] | uper }}\"}\n"
                   "destinations:\n"
                   "  - {name: a, type: file, path: \"out/{{ msg['MSH-10'] }.hl7\"}\n",
                   encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(bad)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stdout.splitlines() == [
        f"{bad}:4: transform[0].set.value: template line 1: no filter named 'uper' "
        "(did you mean 'upper'?)",
        f"{bad}:6: destinations[0].path: template line 1: syntax error: unexpected '}}'",
    ]
