"""ORC and OBR -> ServiceRequest, and in results messages OBR -> DiagnosticReport too.

IG maps ORC[ServiceRequest], OBR[ServiceRequest], OBR[DiagnosticReport]. An ORC is held until
the segment that gives it a subject arrives (OBR in orders and results, RXA in VXU); an ORC
nothing consumed becomes a ServiceRequest of its own when the next ORC or the end comes.
"""

from __future__ import annotations

from conduit.fhir import datatypes as dt
from conduit.fhir.context import Conversion, Json, ref
from conduit.fhir.entities import practitioner
from conduit.fhir.segments import document
from conduit.fhir.v2 import Field, Seg

# table 0038 order status -> request-status (IG ConceptMap OrderStatus)
_ORDER_STATUS = {"A": "active", "CA": "revoked", "CM": "completed", "DC": "revoked",
                 "ER": "entered-in-error", "HD": "on-hold", "IP": "active", "RP": "revoked",
                 "SC": "active"}
# table 0119 order control -> request-status, when ORC-5 is empty
_CONTROL_STATUS = {"NW": "active", "OK": "active", "SC": "active", "XO": "active",
                   "RP": "active", "CA": "revoked", "OC": "revoked", "DC": "revoked",
                   "OD": "revoked", "DR": "revoked", "HD": "on-hold", "OH": "on-hold",
                   "RL": "active", "CR": "revoked", "OR": "active", "SN": "active"}
# table 0123 result status -> diagnostic-report-status (IG ConceptMap ResultStatus)
_REPORT_STATUS = {"O": "registered", "I": "registered", "S": "partial", "A": "partial",
                  "P": "preliminary", "C": "corrected", "R": "partial", "F": "final",
                  "X": "cancelled", "M": "partial"}
# TQ.6 / table 0027 priority -> request-priority
_PRIORITY = {"S": "stat", "A": "asap", "R": "routine", "P": "urgent", "C": "urgent",
             "T": "urgent"}
# Only results messages make a DiagnosticReport of an OBR (IG message maps ORU/OUL). In orders
# (ORM, OML, OMG), DFT and MDM the OBR is the order itself: Microsoft's converter makes a
# DiagnosticReport of every OBR, which claims a report nobody has written yet.
_RESULT_MESSAGES = frozenset({"ORU", "OUL", "ORL"})


def orc(ctx: Conversion, seg: Seg) -> None:
    flush_orc(ctx)
    ctx.pending_orc = seg


def flush_orc(ctx: Conversion) -> None:
    """An ORC no OBR/RXA consumed is a ServiceRequest on its own (pharmacy, diet orders).

    Not in a VXU: there the ORC records the administration (its numbers become the
    Immunization's identifiers), not an open order, though Microsoft's converter makes one.
    """
    pending, ctx.pending_orc = ctx.pending_orc, None
    if pending is not None and ctx.message.message_code.upper() != "VXU":
        _service_request(ctx, pending, None)


def order_identifiers(orc_seg: Seg | None, obr_seg: Seg | None) -> list[Json]:
    """Placer (PLAC) and filler (FILL) order numbers; ORC's, else OBR's."""
    out = []
    for n, code in ((2, "PLAC"), (3, "FILL")):
        f = orc_seg.field(n) if orc_seg is not None else None
        if (f is None or not f[1]) and obr_seg is not None:
            f = obr_seg.field(n)
        if f is not None and (ident := dt.entity_identifier(f, code)):
            out.append(ident)
    return out


def _status(orc_seg: Seg | None) -> str:
    if orc_seg is None:
        return "unknown"
    return (_ORDER_STATUS.get(orc_seg[5].upper()) or _CONTROL_STATUS.get(orc_seg[1].upper())
            or "unknown")


def _service_request(ctx: Conversion, orc_seg: Seg | None, obr_seg: Seg | None) -> Json | None:
    if ctx.patient is None:
        return None  # ServiceRequest.subject is required
    idents = order_identifiers(orc_seg, obr_seg)
    body: Json = {"status": _status(orc_seg), "intent": "order"}
    if idents:
        body["identifier"] = idents
    if orc_seg is not None and (group := dt.entity_identifier(orc_seg.field(4))):
        body["requisition"] = group
    if obr_seg is not None and (code := dt.codeable(obr_seg.field(4))):
        body["code"] = code
    priority = (orc_seg.field(7)[6] if orc_seg is not None else "") or \
        (obr_seg.field(27)[6] if obr_seg is not None else "") or \
        (obr_seg[5] if obr_seg is not None else "")
    if p := _PRIORITY.get(priority.upper()):
        body["priority"] = p
    body["subject"] = {"reference": ctx.patient}
    if ctx.encounter:
        body["encounter"] = {"reference": ctx.encounter}
    if orc_seg is not None and (when := ctx.datetime(orc_seg[9])):
        body["authoredOn"] = when
    if obr_seg is not None and (when := ctx.datetime(obr_seg[6])):
        body["occurrenceDateTime"] = when
    requester = (practitioner(ctx, orc_seg.field(12)) if orc_seg is not None else None) or \
        (practitioner(ctx, obr_seg.field(16)) if obr_seg is not None else None)
    if requester:
        body["requester"] = requester
    if obr_seg is not None:
        reasons = [c for f in obr_seg.reps(31) if (c := dt.codeable(f))]
        if reasons:
            body["reasonCode"] = reasons
    key = (("order", dt.identifier_key(idents[0])) if idents
           else ctx.local_key("ServiceRequest"))
    resource = ctx.add("ServiceRequest", key, body)
    ctx.order = resource
    return resource


def obr(ctx: Conversion, seg: Seg) -> None:
    document.finish(ctx)  # an OBR after a TXA starts an order group: the document is done
    pending, ctx.pending_orc = ctx.pending_orc, None
    request = _service_request(ctx, pending, seg)
    ctx.report = None
    ctx.observation = None
    if ctx.message.message_code.upper() in _RESULT_MESSAGES:
        ctx.report = _diagnostic_report(ctx, seg, request)


def _diagnostic_report(ctx: Conversion, seg: Seg, request: Json | None) -> Json:
    idents = [i for i in (dt.entity_identifier(seg.field(3), "FILL"),
                          dt.entity_identifier(seg.field(2), "PLAC")) if i]
    body: Json = {"status": _REPORT_STATUS.get(seg[25].upper(), "unknown")}
    if idents:
        body["identifier"] = idents
    if request is not None:
        body["basedOn"] = [ref(request)]
    if section := dt.code_concept(seg[24], "0074"):
        body["category"] = [section]
    # DiagnosticReport.code is required; an OBR without OBR-4 is still a report
    body["code"] = dt.codeable(seg.field(4)) or {"text": "unknown"}
    if ctx.patient:
        body["subject"] = {"reference": ctx.patient}
    if ctx.encounter:
        body["encounter"] = {"reference": ctx.encounter}
    start, end = ctx.datetime(seg[7]), ctx.datetime(seg[8])
    if start and end:
        body["effectivePeriod"] = {"start": start, "end": end}
    elif start:
        body["effectiveDateTime"] = start
    if issued := ctx.instant(seg[22]):
        body["issued"] = issued
    interpreters = [r for f in seg.reps(32) if (r := practitioner(ctx, _ndl_person(ctx, f)))]
    if interpreters:
        body["resultsInterpreter"] = interpreters
    key = (("report", dt.identifier_key(idents[0])) if idents
           else ctx.local_key("DiagnosticReport"))
    return ctx.add("DiagnosticReport", key, body)


def _ndl_person(ctx: Conversion, f: Field) -> Field:
    """NDL.1 is a CNN (id & family & given ...), laid out like XCN in its subcomponents."""
    return f.part(1)
