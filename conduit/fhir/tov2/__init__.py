"""FHIR R4 -> HL7 v2: Patient/Encounter to ADT^A04/A08, Observation/DiagnosticReport to ORU^R01.

``to_hl7v2(resource_or_bundle, V2Options())`` answers the message text (CR-separated). The
message kind follows ``V2Options.message_type``: ADT (Observations as OBX after PV1), ORU, or
``auto``, where a MessageHeader's ADT event makes an ADT and otherwise results make an ORU^R01.
One message carries one patient: every result and visit must belong to a Patient of the Bundle
(:mod:`.patients`), and a Bundle of several patients is refused, or, with
``patients="split"``, written as one message per patient in an HL7 batch.
"""

from conduit.fhir.tov2.convert import (
    ConversionError,
    MessageKind,
    PatientsMode,
    V2Options,
    Version,
    messages,
    to_hl7v2,
)

__all__ = ["ConversionError", "MessageKind", "PatientsMode", "V2Options", "Version",
           "messages", "to_hl7v2"]
