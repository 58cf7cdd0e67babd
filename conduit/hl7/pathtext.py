"""A field path as a config field (pydantic), apart from the parser so that parsing never
imports pydantic."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from conduit.hl7.path import check_path

__all__ = ["PathText"]

PathText = Annotated[
    str,
    AfterValidator(check_path),
    Field(description="An HL7 v2 path: SEG[n]-field[rep].component.subcomponent, 1-based; "
                      "SEG alone (or SEG[n]) names a whole segment.",
          examples=["MSH-9.1", "PID-5.1", "OBX[2]-5", "PID-3[2].1"]),
]
"""A field path as written in a channel file, checked when the channel loads."""
