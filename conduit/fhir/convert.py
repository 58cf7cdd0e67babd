"""HL7 v2 message -> FHIR R4 Bundle (a plain dict), the entry point of :mod:`conduit.fhir`.

The patient and first visit are read first (SIU puts PID after SCH, and every resource points
at them), then every segment in order through :data:`~conduit.fhir.segments.MAPS`; what a
segment belongs to (the OBR above an OBX, the RXA above an RXR) is tracked in the
:class:`~conduit.fhir.context.Conversion`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from conduit.fhir.bundle import bundle
from conduit.fhir.context import Conversion, ConvertOptions, Json
from conduit.fhir.maps import MAPS
from conduit.fhir.segments import appointment, document, header, order
from conduit.hl7.message import Message

__all__ = ["ConvertOptions", "convert", "dumps"]

_FIRST = ("PID", "PD1", "PV1", "PV2")


def convert(message: Message, options: ConvertOptions | None = None) -> Json:
    """The FHIR Bundle for one parsed message."""
    segments = message.segments()
    ctx = Conversion(message, options, segments)
    done: set[int] = set()
    seen: set[str] = set()
    for i, segment in enumerate(segments):  # the first PID/PV1 group, wherever it is
        name = segment.name
        if name in _FIRST and name not in seen:
            if name in ("PD1", "PV2") and name[:2] + ("D" if name == "PD1" else "1") not in seen:
                continue
            seen.add(name)
            MAPS[name](ctx, ctx.seg(segment))
            done.add(i)
        elif name in ("PID", "PV1") and name in seen:
            break
    header.message_header(ctx)
    for i, segment in enumerate(segments):
        if i in done:
            continue
        name = segment.name
        mapping = MAPS.get(name)
        if mapping is None:
            continue
        if name == "SCH":
            appointment.finish(ctx)
        mapping(ctx, ctx.seg(segment))
    order.flush_orc(ctx)
    document.finish(ctx)
    appointment.finish(ctx)
    header.provenance(ctx)
    return bundle(ctx)


def _default(value: Any) -> Any:
    # called for every NM value of every Bundle: no import here (it cost 2 % of a conversion)
    if type(value) is Decimal or isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(type(value).__name__)


def dumps(bundle_: Json, *, indent: bool = False) -> bytes:
    """JSON bytes for a Bundle (decimals written exactly as the sender wrote them)."""
    option = orjson.OPT_INDENT_2 if indent else 0
    return orjson.dumps(bundle_, default=_default, option=option)
