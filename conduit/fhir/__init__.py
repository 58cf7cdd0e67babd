"""HL7 v2 <-> FHIR R4 conversion, built on plain dicts (validated only when asked).

``convert(Message.parse(raw))`` gives a Bundle dict; ``dumps`` writes it with orjson.
"""

from conduit.fhir import compiled

compiled.install()  # the optional mypyc build, when installed and current; before any import below

from conduit.fhir.context import ConvertOptions  # noqa: E402
from conduit.fhir.convert import convert, dumps  # noqa: E402

__all__ = ["ConvertOptions", "convert", "dumps"]
