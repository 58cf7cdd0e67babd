"""Writing v2 text: escaping each value and joining components, subcomponents, repetitions.

Every value from FHIR is free text, so each one is escaped on its own before it is joined with
the standard delimiters (``|^~\\&``); empty trailing parts are trimmed, as v2 writers do.
"""

from __future__ import annotations

from collections.abc import Iterable

from conduit.hl7.escape import escape
from conduit.hl7.message import Separators

__all__ = ["SEPS", "Raw", "comp", "reps", "segment", "sub", "value"]

SEPS = Separators()


class Raw(str):
    """Text already in v2 form (built with :func:`sub`/:func:`comp`), not to be escaped again."""

    __slots__ = ()


def _trim(parts: list[str]) -> list[str]:
    while parts and not parts[-1]:
        parts.pop()
    return parts


def value(text: object) -> str:
    """One escaped leaf value (a newline becomes the v2 line break ``\\.br\\``)."""
    if text is None:
        return ""
    s = escape(str(text).replace("\r\n", "\n").replace("\n", "\x00"), SEPS)
    return s.replace("\x00", "\\.br\\")


def sub(*parts: object) -> Raw:
    """Subcomponents, each a leaf value (escaped here)."""
    return Raw("&".join(_trim([value(p) for p in parts])))


def comp(*parts: object) -> Raw:
    """Components; a part that is :class:`Raw` (built by :func:`sub`) is kept as it is."""
    return Raw("^".join(_trim([p if isinstance(p, Raw) else value(p) for p in parts])))


def reps(items: Iterable[str]) -> str:
    """Repetitions of already-built field values."""
    return "~".join(i for i in items if i)


def segment(name: str, fields: dict[int, str]) -> str:
    """A segment from field number -> built text (MSH handled by the caller)."""
    last = max((n for n, v in fields.items() if v), default=0)
    return "|".join([name] + [fields.get(n, "") for n in range(1, last + 1)])
