"""HL7 v2 <-> FHIR R4 conversion, built on plain dicts (validated only when asked).

``convert(Message.parse(raw))`` gives a Bundle dict; ``dumps`` writes it with orjson.
"""

from conduit.fhir.context import ConvertOptions
from conduit.fhir.convert import convert, dumps

__all__ = ["ConvertOptions", "convert", "dumps"]
