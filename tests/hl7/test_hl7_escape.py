"""Escape sequences: the standard ones, hex, unknown ones left alone, and round trips."""

from __future__ import annotations

import pytest

from conduit.hl7.escape import escape, unescape
from conduit.hl7.message import Separators

STD = Separators()


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ("A\\F\\B", "A|B"),
        ("A\\S\\B\\T\\C\\R\\D\\E\\E", "A^B&C~D\\E"),
        ("line1\\.br\\line2", "line1\nline2"),
        ("\\X41424344\\", "ABCD"),
        ("caf\\XC3A9\\", "café"),
        ("\\H\\bold\\N\\", "\\H\\bold\\N\\"),  # highlighting: unknown here, kept
        ("\\Zcustom\\", "\\Zcustom\\"),
        ("\\X4\\", "\\X4\\"),  # odd hex digits: kept
        ("\\XZZ\\", "\\XZZ\\"),
        ("trailing \\", "trailing \\"),
        ("\\H\\\\F\\", "\\H\\|"),
        ("no escapes", "no escapes"),
    ],
)
def test_unescape(raw: str, plain: str) -> None:
    assert unescape(raw, STD) == plain


def test_unescape_hex_falls_back_to_latin1() -> None:
    assert unescape("\\XE9\\", STD) == "é"
    assert unescape("\\XE9\\", STD, charset="iso8859-1") == "é"


def test_truncation_character() -> None:
    seps = Separators(truncation="#")
    assert escape("a#b", seps) == "a\\P\\b"
    assert unescape("a\\P\\b", seps) == "a#b"
    assert escape("a#b", STD) == "a#b"


def test_custom_separators() -> None:
    seps = Separators(field="^", component="~", repetition="|", escape="/", subcomponent="&")
    assert escape("a^b~c|d/e&f", seps) == "a/F/b/S/c/R/d/E/e/T/f"
    assert unescape("a/F/b/S/c", seps) == "a^b~c"


@pytest.mark.parametrize("text", ["plain", "A|B^C~D\\E&F", "two\nlines\r\n", "x\\F\\y", ""])
def test_round_trip(text: str) -> None:
    escaped = escape(text, STD)
    for ch in "|^~&\r\n":
        assert ch not in escaped
    assert unescape(escaped, STD) == text
