"""The ``fhir-to-hl7v2`` step: a FHIR resource or Bundle becomes an HL7 v2 message body.

Patient/Encounter give ADT^A04 or ADT^A08, Observation/DiagnosticReport give ORU^R01 (see
:mod:`conduit.fhir.tov2`). It reads the current body, so it works in a ``data_type: fhir`` or
``json`` channel, and after ``hl7v2-to-fhir`` too. The message is shaped for the chosen v2
version so that a strict reader (hl7apy) accepts it.
"""

from __future__ import annotations

from typing import Literal

import orjson
from pydantic import Field

from conduit.core.errors import MessageError
from conduit.core.registry import step
from conduit.fhir.tov2 import V2Options, Version, to_hl7v2
from conduit.transforms.registry import StepOptions, StepState


class FhirToHl7v2Options(StepOptions):
    """Convert a FHIR resource or Bundle to an HL7 v2 message (ADT or ORU)."""

    version: Version = Field("2.5.1", description="HL7 v2 version written in MSH-12.",
                             examples=["2.5.1", "2.3.1"])
    event: Literal["A04", "A08"] = Field(
        "A08", description="ADT trigger for Patient/Encounter content: A04 registers, "
                           "A08 updates.", examples=["A08"])
    sending_application: str = Field("CONDUIT", description="MSH-3.")
    sending_facility: str = Field("", description="MSH-4.")
    receiving_application: str = Field("", description="MSH-5.")
    receiving_facility: str = Field("", description="MSH-6.")


@step("fhir-to-hl7v2", FhirToHl7v2Options, needs=("fhir", "json"), produces="hl7v2",
      summary="Patient/Encounter → ADT^A04/A08, Observation/DiagnosticReport → ORU^R01, at a "
              "chosen version")
class FhirToHl7v2:
    """Convert a FHIR resource or Bundle to an HL7 v2 message (ADT or ORU)."""

    def __init__(self, options: FhirToHl7v2Options) -> None:
        self.label = f"fhir-to-hl7v2 {options.version}"
        self._options = V2Options(
            version=options.version, adt_event=options.event,
            sending_application=options.sending_application,
            sending_facility=options.sending_facility,
            receiving_application=options.receiving_application,
            receiving_facility=options.receiving_facility)

    def __call__(self, state: StepState) -> None:
        data = state.variables.get("body") if state.body is None else _json(state.body)
        if not isinstance(data, dict):
            raise MessageError("the body is not a FHIR resource (a JSON object)")
        state.body = to_hl7v2(data, self._options)


def _json(text: str) -> object:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise MessageError(f"the body is not JSON: {exc.msg} at line {exc.lineno}") from None
