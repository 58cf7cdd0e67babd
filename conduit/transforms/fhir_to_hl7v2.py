"""The ``fhir-to-hl7v2`` step: a FHIR resource or Bundle becomes an HL7 v2 message body.

Patient/Encounter give ADT^A04 or ADT^A08, Observation/DiagnosticReport give ORU^R01, or the
message the channel asks for (see :mod:`conduit.fhir.tov2`); a Bundle of several patients is
refused, or split into one message per patient. It reads the current body, so it works in a
``data_type: fhir`` or ``json`` channel, and after ``hl7v2-to-fhir`` too. The message is shaped
for the chosen v2 version so that a strict reader (hl7apy) accepts it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pydantic import Field

from conduit.core.errors import MessageError
from conduit.core.registry import step
from conduit.fhir.tov2 import V2Options, Version, to_hl7v2
from conduit.fhir.tov2.decimals import JSONDecodeError, read_json
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
    message_type: Literal["auto", "ADT", "ORU"] = Field(
        "auto", description="The message to write. ADT: ADT^A04/A08 (see event) with PID, "
                            "PV1 and each Observation as an OBX after PV1 (a DiagnosticReport, "
                            "or an Observation with notes, is refused: ADT has no OBR or NTE "
                            "there). ORU: ORU^R01 (refused without results). auto: ADT when a "
                            "MessageHeader's event is an ADT one (v2-0003 A..), else ORU^R01 "
                            "for a patient with results and ADT for one without.",
        examples=["ADT"])
    patients: Literal["refuse", "split"] = Field(
        "refuse", description="A Bundle holding several patients: refuse it (the message is "
                              "an error, kept for replay), or split it into one message per "
                              "patient, sent together as one HL7 batch (BHS ... BTS; one "
                              "patient gives a plain message) for a destination whose receiver "
                              "takes batches (a file; a Conduit MLLP or file source splits "
                              "them), not an mllp destination, which reads one ACK. Either "
                              "way a result whose subject is not in the Bundle, or is another "
                              "patient than its report's or encounter's, is refused.",
        examples=["split"])


@step("fhir-to-hl7v2", FhirToHl7v2Options, needs=("fhir", "json"), produces="hl7v2",
      summary="Patient/Encounter → ADT^A04/A08, Observation/DiagnosticReport → ORU^R01, at a "
              "chosen version; `message_type: ADT` keeps an ADT Bundle an ADT (PV1 kept, "
              "Observations as OBX after it). One message, one patient: a Bundle of several "
              "patients is refused, or with `patients: split` written as one message per "
              "patient in an HL7 batch (BHS…BTS, for a receiver that takes batches, e.g. "
              "through a `file` destination; the `mllp` destination reads one ACK per send, not "
              "a batch ACK); a result or visit whose subject is not a Patient of the Bundle, or "
              "another patient than its report's or encounter's, is refused, the error naming "
              "the resource, never patient data. Decimals as written (`7.20` stays `7.20`), "
              "telephone parts in the XTN components of the version, MSH-18 set when the text "
              "is not ASCII")
class FhirToHl7v2:
    """Convert a FHIR resource or Bundle to an HL7 v2 message (ADT or ORU)."""

    def __init__(self, options: FhirToHl7v2Options) -> None:
        self.label = f"fhir-to-hl7v2 {options.version}"
        self._options = V2Options(
            version=options.version, adt_event=options.event,
            sending_application=options.sending_application,
            sending_facility=options.sending_facility,
            receiving_application=options.receiving_application,
            receiving_facility=options.receiving_facility,
            message_type=options.message_type, patients=options.patients)

    def __call__(self, state: StepState) -> None:
        data = state.variables.get("body") if state.body is None else _json(state.body)
        if not isinstance(data, dict):
            raise MessageError("the body is not a FHIR resource (a JSON object)")
        options = self._options
        if state.message is not None:  # the engine writes the body in the message's codec
            options = replace(options, codec=state.message.encoding or "utf-8")
        state.body = to_hl7v2(data, options)


def _json(text: str) -> object:
    """The body's JSON, decimals as written (``7.20`` stays ``7.20`` in OBX-5)."""
    try:
        return read_json(text)
    except JSONDecodeError as exc:
        raise MessageError(f"the body is not JSON: {exc.msg} at line {exc.lineno}") from None
