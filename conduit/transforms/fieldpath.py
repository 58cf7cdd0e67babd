"""Field paths as analysts write them (``PID-5.1``, ``OBX[2]-5``, ``ZPI``), checked at load.

A bad path is a configuration error, found when the channel loads rather than on the first
message. The grammar belongs to :mod:`conduit.hl7.path`; this module adapts it to pydantic so
every model that names a field checks it the same way.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from conduit.hl7.path import parse_path


def check_path(text: str) -> str:
    """Return ``text`` if it is a valid path, else raise ValueError saying why."""
    parse_path(text)
    return text


FieldPath = Annotated[
    str,
    AfterValidator(check_path),
    Field(description="An HL7 v2 path: SEG[n]-field[rep].component.subcomponent, 1-based; "
                      "SEG alone (or SEG[n]) names a whole segment.",
          examples=["MSH-9.1", "PID-5.1", "OBX[2]-5", "PID-3[2].1"]),
]
