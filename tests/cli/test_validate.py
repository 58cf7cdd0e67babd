"""``conduit validate``."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from conduit.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_channels_are_valid() -> None:
    result = CliRunner().invoke(main, ["validate", str(ROOT / "channels")])
    assert result.exit_code == 0, result.output
    shipped = [p for p in (ROOT / "channels").glob("*.yaml")
               if not p.name.endswith(".test.yaml")]
    assert result.output == f"ok: {len(shipped)} channel{'s' if len(shipped) != 1 else ''}\n"


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
