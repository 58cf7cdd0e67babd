"""Field path grammar: what analysts may write, and the errors they get otherwise."""

from __future__ import annotations

import pytest

from conduit.hl7.path import FieldPath, parse_path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("MSH-9.1", FieldPath("MSH", None, 9, None, 1, None)),
        ("PID-5", FieldPath("PID", None, 5, None, None, None)),
        ("OBX[2]-5", FieldPath("OBX", 2, 5, None, None, None)),
        ("PID-3[2].4.1", FieldPath("PID", None, 3, 2, 4, 1)),
        ("ZPI", FieldPath("ZPI", None, None, None, None, None)),
        ("ZPI[2]", FieldPath("ZPI", 2, None, None, None, None)),
        ("Z01-1", FieldPath("Z01", None, 1, None, None, None)),
    ],
)
def test_valid_paths(text: str, expected: FieldPath) -> None:
    assert parse_path(text) == expected
    assert str(parse_path(text)) == text


def test_defaults_and_cache() -> None:
    p = parse_path("PID-3")
    assert p.seg_n == 1 and p.rep_n == 1
    assert parse_path("PID-3") is p  # lru_cache: parsed once


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected SEG"),
        ("PID-", "expected SEG"),
        ("PID.3", "expected SEG"),
        ("PID-3-1", "expected SEG"),
        ("PID-3.1.2.3", "expected SEG"),
        ("PI-3", "expected SEG"),
        ("PID-x", "expected SEG"),
        ("pid-3", "upper case"),
        (" PID-3", "surrounding spaces"),
        ("PID-0", "field numbers start at 1"),
        ("OBX[0]-5", "segment numbers start at 1"),
        ("PID-3[0]", "repetition numbers start at 1"),
        ("PID-3.0", "component numbers start at 1"),
        ("MSH-2.2", "no components"),
    ],
)
def test_invalid_paths(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_path(text)


def test_parsing_and_conversion_do_not_import_pydantic() -> None:
    """pydantic's objects would lengthen every full garbage collection of a converting process;
    the config form of a path (PathText) loads it only when asked for."""
    import subprocess
    import sys

    code = ("import sys, conduit.hl7.message, conduit.fhir; "
            "assert 'pydantic' not in sys.modules, 'imported pydantic'; "
            "from conduit.hl7.pathtext import PathText; "
            "from pydantic import TypeAdapter; "
            "assert TypeAdapter(PathText).validate_python('PID-3.1') == 'PID-3.1'")
    subprocess.run([sys.executable, "-c", code], check=True)
