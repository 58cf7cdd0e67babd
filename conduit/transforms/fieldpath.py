"""Field paths as analysts write them (``PID-5.1``, ``OBX[2]-5``, ``PID-3[2].1``), checked at load.

A bad path is a configuration error, found when the channel loads rather than on the first
message. The grammar itself belongs to :mod:`conduit.hl7.path`; this module only adapts it to
pydantic so every model that names a field checks it the same way.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

_PATH = re.compile(r"^[A-Z][A-Z0-9]{2}(\[[1-9][0-9]*\])?-[1-9][0-9]*(\[[1-9][0-9]*\])?"
                   r"(\.[1-9][0-9]*(\.[1-9][0-9]*)?)?$")
_SEGMENT = re.compile(r"^[A-Z][A-Z0-9]{2}(\[[1-9][0-9]*\])?$")


def check_path(text: str) -> str:
    """Return ``text`` if it is a valid field path, else raise ValueError saying why."""
    try:
        from conduit.hl7.path import parse_path  # late: conduit.hl7 need not load with the models
    except ImportError:  # pragma: no cover - until conduit.hl7 lands
        if not _PATH.match(text):
            raise ValueError(f"{text!r} is not a field path like PID-5.1") from None
        return text
    parse_path(text)
    return text


def check_segment_or_path(text: str) -> str:
    """Accept a bare segment (``ZPI``, ``OBX[2]``) as well as a field path."""
    if _SEGMENT.match(text):
        return text
    return check_path(text)


def is_segment(text: str) -> bool:
    """True when ``text`` names a whole segment rather than a field."""
    return bool(_SEGMENT.match(text))


FieldPath = Annotated[
    str,
    AfterValidator(check_path),
    Field(description="An HL7 v2 field path: SEG-field.component.subcomponent, 1-based; "
                      "SEG[n] picks the n-th segment, field[n] the n-th repetition.",
          examples=["MSH-9.1", "PID-5.1", "OBX[2]-5", "PID-3[2].1"]),
]

SegmentOrPath = Annotated[
    str,
    AfterValidator(check_segment_or_path),
    Field(description="A segment (ZPI, OBX[2]) or a field path (PID-5.1).",
          examples=["ZPI", "PID-19", "OBX[2]"]),
]
