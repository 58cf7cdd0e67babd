"""FHIR R4 -> HL7 v2: Patient/Encounter to ADT^A04/A08, Observation/DiagnosticReport to ORU^R01.

``to_hl7v2(resource_or_bundle, V2Options())`` answers one message text (CR-separated). The
message kind follows the content: observations or reports make an ORU^R01, else a Patient
(with its Encounter, if any) makes an ADT.
"""

from conduit.fhir.tov2.convert import ConversionError, V2Options, Version, to_hl7v2

__all__ = ["ConversionError", "V2Options", "Version", "to_hl7v2"]
