"""HL7 v2 escape sequences (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\P\\ \\.br\\ \\Xhh\\).

The parser hands out raw (still escaped) text so that values round-trip byte for byte; callers that
want the human value unescape it, and anything written into a message (ACK texts included) is
escaped first so it cannot break the message structure.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conduit.hl7.message import Separators

__all__ = ["escape", "unescape"]


@lru_cache(maxsize=64)
def _escape_table(seps: Separators) -> dict[int, str]:
    e = seps.escape
    table = {
        ord(seps.escape): f"{e}E{e}",
        ord(seps.field): f"{e}F{e}",
        ord(seps.component): f"{e}S{e}",
        ord(seps.subcomponent): f"{e}T{e}",
        ord(seps.repetition): f"{e}R{e}",
        ord("\r"): f"{e}X0D{e}",
        ord("\n"): f"{e}X0A{e}",
    }
    if seps.truncation:
        table[ord(seps.truncation)] = f"{e}P{e}"
    return table


@lru_cache(maxsize=64)
def _unescape_table(seps: Separators) -> dict[str, str]:
    table = {
        "F": seps.field,
        "S": seps.component,
        "T": seps.subcomponent,
        "R": seps.repetition,
        "E": seps.escape,
        ".br": "\n",
    }
    if seps.truncation:
        table["P"] = seps.truncation
    return table


def escape(text: str, separators: Separators) -> str:
    """Escape every delimiter (and CR/LF, as hex) so ``text`` can sit inside one component."""
    table = _escape_table(separators)
    for ch in text:
        if ord(ch) in table:
            return text.translate(table)
    return text


def _hex(code: str, charset: str) -> str | None:
    digits = code[1:]
    if not digits or len(digits) % 2:
        return None
    try:
        data = bytes.fromhex(digits)
    except ValueError:
        return None
    try:
        return data.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return data.decode("latin-1")


def unescape(text: str, separators: Separators, *, charset: str = "utf-8") -> str:
    """Resolve escape sequences; unknown ones (\\H\\, \\N\\, \\Zxx\\, ...) are left as they are.

    ``charset`` decodes ``\\Xhh..\\`` bytes (the message's codec); invalid bytes fall back to
    Latin-1 rather than fail.
    """
    esc = separators.escape
    if esc not in text:
        return text
    table = _unescape_table(separators)
    out: list[str] = []
    pos = 0
    n = len(text)
    while pos < n:
        start = text.find(esc, pos)
        if start == -1:
            break
        end = text.find(esc, start + 1)
        if end == -1:
            break
        code = text[start + 1 : end]
        value = table.get(code)
        if value is None and code[:1] == "X":
            value = _hex(code, charset)
        if value is None:
            # unknown: keep the opening escape and rescan from the closing one, which may
            # open the next sequence (e.g. a lone backslash followed by \F\)
            out.append(text[pos:start + 1])
            pos = start + 1
            continue
        out.append(text[pos:start])
        out.append(value)
        pos = end + 1
    out.append(text[pos:])
    return "".join(out)
