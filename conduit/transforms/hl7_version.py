"""The ``hl7-version`` step: rewrite a message for another HL7 v2 version (e.g. 2.3 -> 2.5.1).

What changes between versions, for a message that already parses: MSH-12; MSH-9.3 (the message
structure, required from 2.3.1 on, unknown before); and the fields and components a version
does not have. Those are taken from hl7apy's tables for the target version (loaded once):
fields the target lacks or has withdrawn are dropped, components beyond the target data type's
are dropped, a single-value type keeps its first component. Values are never shortened here:
lengths are the receiver's business, and cutting text silently would lose data. Everything
else (escapes, repetitions, Z-segments) passes as it is.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from conduit.core.errors import MessageError
from conduit.core.registry import step
from conduit.fhir.tov2.fit import fit_segment
from conduit.hl7.message import Message
from conduit.transforms.registry import StepOptions, StepState

TargetVersion = Literal["2.1", "2.2", "2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7",
                        "2.7.1", "2.8"]

# trigger -> message structure where it differs from CODE_TRIGGER (HL7 table 0354)
_STRUCTURE = {
    **dict.fromkeys(("ADT^A04", "ADT^A08", "ADT^A13"), "ADT_A01"),
    **dict.fromkeys(("ADT^A14", "ADT^A28", "ADT^A31"), "ADT_A05"),
    **dict.fromkeys(("ADT^A07",), "ADT_A06"),
    **dict.fromkeys(("ADT^A10", "ADT^A11", "ADT^A22", "ADT^A23", "ADT^A25", "ADT^A26",
                     "ADT^A27", "ADT^A29", "ADT^A32", "ADT^A33"), "ADT_A09"),
    **dict.fromkeys(("ADT^A15",), "ADT_A15"),
    **dict.fromkeys(("ADT^A40", "ADT^A41", "ADT^A42"), "ADT_A39"),
    **dict.fromkeys(("ADT^A47", "ADT^A49"), "ADT_A30"),
    **dict.fromkeys(("SIU^S13", "SIU^S14", "SIU^S15", "SIU^S16", "SIU^S17", "SIU^S18",
                     "SIU^S19", "SIU^S20", "SIU^S21", "SIU^S22", "SIU^S23", "SIU^S24",
                     "SIU^S26"), "SIU_S12"),
    **dict.fromkeys(("MDM^T03", "MDM^T05", "MDM^T07", "MDM^T09", "MDM^T11"), "MDM_T01"),
    **dict.fromkeys(("MDM^T04", "MDM^T06", "MDM^T08", "MDM^T10"), "MDM_T02"),
    **dict.fromkeys(("BAR^P05",), "BAR_P05"),
    **dict.fromkeys(("ORU^R30", "ORU^R31", "ORU^R32"), "ORU_R30"),
}


def structure(message_type: str) -> str:
    """``ADT^A04`` -> ``ADT_A01``; otherwise ``CODE_TRIGGER`` (``ORU^R01`` -> ``ORU_R01``)."""
    return _STRUCTURE.get(message_type, message_type.replace("^", "_"))


class Hl7VersionOptions(StepOptions):
    """Rewrite the message for another HL7 v2 version (MSH-12, MSH-9.3, fields)."""

    to: TargetVersion = Field(description="The version to write.", examples=["2.5.1"])
    fields: bool = Field(
        True, description="Also drop fields and components the target version does not "
                          "have (false: change only MSH-12 and MSH-9.3).")


@step("hl7-version", Hl7VersionOptions, needs=("hl7v2",),
      summary="convert between HL7 v2 versions (e.g. 2.3 → 2.5.1)")
class Hl7Version:
    """Rewrite the message for another HL7 v2 version (MSH-12, MSH-9.3, fields)."""

    def __init__(self, options: Hl7VersionOptions) -> None:
        self.label = f"hl7-version {options.to}"
        self._to = options.to
        self._number = tuple(int(p) for p in options.to.split("."))
        self._fields = options.fields

    def __call__(self, state: StepState) -> None:
        message = state.message
        if message is None:
            raise MessageError("hl7-version works on HL7 v2 messages")
        message.set("MSH-12", self._to)
        code, trigger = message.message_code, message.trigger_event
        if self._number >= (2, 3, 1) and code and trigger:
            message.set("MSH-9.3", structure(f"{code}^{trigger}"))
        elif self._number < (2, 3, 1) and message.get("MSH-9.3"):
            message.set("MSH-9", f"{code}^{trigger}" if trigger else code)
        if not self._fields:
            return
        seps = message.separators
        if (seps.field, seps.component, seps.repetition, seps.escape, seps.subcomponent) \
                != ("|", "^", "~", "\\", "&"):
            # the fitter splits on the standard delimiters; others are rare enough to skip
            return
        segments = message.encode().rstrip("\r").split("\r")
        fitted = [segments[0]] + [s if s[:1] == "Z" else fit_segment(self._to, s, lengths=False)
                                  for s in segments[1:]]
        rebuilt = Message.parse("\r".join(fitted) + "\r")
        rebuilt.encoding = message.encoding
        state.message = rebuilt
