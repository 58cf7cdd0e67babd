"""HL7 v2 for Conduit: a lazy split-based parser on the hot path, ACKs, MLLP framing, batches.

hl7apy (strict validation, ``conduit.hl7.strict``) is used only when a channel asks for it.
"""

from conduit.hl7.message import Message, Segment, Separators
from conduit.hl7.path import FieldPath, parse_path

__all__ = ["FieldPath", "Message", "Segment", "Separators", "parse_path"]
