"""ORC and OBR -> ServiceRequest, and in results messages OBR -> DiagnosticReport too.

IG maps ORC[ServiceRequest], OBR[ServiceRequest], OBR[DiagnosticReport]. An ORC is held until
the segment that gives it a subject arrives (OBR in orders and results, RXA in VXU); an ORC
nothing consumed becomes a ServiceRequest of its own when the next ORC or the end comes.
"""

from __future__ import annotations

from conduit.fhir import datatypes as dt
from conduit.fhir import vocabulary
from conduit.fhir.context import Conversion, Json, ref
from conduit.fhir.entities import organization, practitioner, practitioner_role
from conduit.fhir.segments import document
from conduit.fhir.v2 import Field, Seg

_PERFORMER_FUNCTION = "http://hl7.org/fhir/StructureDefinition/event-performerFunction"
_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_BUSINESS_EVENT = "http://hl7.org/fhir/StructureDefinition/businessEvent"
_CALLBACK = "http://hl7.org/fhir/StructureDefinition/servicerequest-order-callback-phone-number"
_STATUS_REASON = "http://hl7.org/fhir/StructureDefinition/request-statusReason"
# table 0123 result status -> diagnostic-report-status (IG ConceptMap ResultStatus)
_REPORT_STATUS = {"O": "registered", "I": "registered", "S": "partial", "A": "partial",
                  "P": "preliminary", "C": "corrected", "R": "partial", "F": "final",
                  "X": "cancelled", "M": "partial"}
# TQ.6 / table 0027 priority -> request-priority, for codes the IG's ExtendedPriorityCodes
# map leaves out
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
    if pending is not None and ctx.message_code.upper() != "VXU":
        _service_request(ctx, pending, None)


def order_identifiers(ctx: Conversion, orc_seg: Seg | None, obr_seg: Seg | None) -> list[Json]:
    """Placer (PLAC) and filler (FILL) order numbers; ORC's, else OBR's."""
    out = []
    for n, code in ((2, "PLAC"), (3, "FILL")):
        f = orc_seg.field(n) if orc_seg is not None else None
        if (f is None or not f[1]) and obr_seg is not None:
            f = obr_seg.field(n)
        if f is not None and (ident := ctx.entity_identifier(f, code)):
            out.append(ident)
    return out


def _status(orc_seg: Seg | None) -> str:
    """ORC-5 by the IG's OrderStatus map, else ORC-1 by its OrderControlCode map."""
    if orc_seg is None:
        return "unknown"
    return (vocabulary.code("OrderStatus", orc_seg[5])
            or vocabulary.code("OrderControlCode[ServiceRequest.status]", orc_seg[1])
            or "unknown")


def group_numbers(ctx: Conversion, orc_seg: Seg) -> tuple[Json | None, Json | None]:
    """ORC-4 placer group number (EI up to v2.6; EIP from v2.7, whose second part is the
    filler group number) -> (requisition PGN, identifier FGN); ORC-38 is the filler's own."""
    f = orc_seg.field(4)
    eip = orc_seg.segment.separators.subcomponent in f.raw.split(
        orc_seg.segment.separators.component, 1)[0]
    placer = ctx.entity_identifier(f.part(1) if eip else f, "PGN")
    filler = ctx.entity_identifier(orc_seg.field(38), "FGN") or \
        (ctx.entity_identifier(f.part(2), "FGN") if eip else None)
    return placer, filler


def _business_events(orc_seg: Seg, when: str | None) -> list[Json]:
    """ORC-1 order control and ORC-9 its date -> businessEvent extensions (IG ORC map)."""
    out = []
    if control := orc_seg[1]:
        out.append({"url": _BUSINESS_EVENT, "extension": [{
            "url": "value", "valueCodeableConcept": {"coding": [
                dt.coding(control, "", dt.table_uri("0119"))]}}]})
    if when:
        out.append({"url": _BUSINESS_EVENT, "extension": [{"url": "date",
                                                             "valueDateTime": when}]})
    return out


def _occurrence(ctx: Conversion, tq: Field) -> Json:
    """TQ (ORC-7, OBR-27): start (TQ.4) and end (TQ.5) -> occurrence[x]."""
    start, end = ctx.datetime(tq[4]), ctx.datetime(tq[5])
    if start and end:
        return {"occurrencePeriod": {"start": start, "end": end}}
    return {"occurrenceDateTime": start} if start else {}


def _requester(ctx: Conversion, orc_seg: Seg | None, obr_seg: Seg | None) -> Json | None:
    """ORC-12 (with ORC-24 address) and ORC-21 ordering facility (ORC-22 address, ORC-23
    phone) -> a PractitionerRole; without them OBR-16 -> the Practitioner (IG maps)."""
    if orc_seg is not None:
        who = practitioner(ctx, orc_seg.field(12))
        if who is not None:
            _add_to(ctx, who, "address", [a for f in orc_seg.reps(24) if (a := dt.address(f))])
        facility = organization(ctx, orc_seg.field(21))
        if facility is not None:
            _add_to(ctx, facility, "address",
                    [a for f in orc_seg.reps(22) if (a := dt.address(f))])
            _add_to(ctx, facility, "telecom",
                    [t for f in orc_seg.reps(23) if (t := dt.contact_point(f, "work"))])
        if role := practitioner_role(ctx, who, facility):
            return role
    return practitioner(ctx, obr_seg.field(16)) if obr_seg is not None else None


def _add_to(ctx: Conversion, reference: Json, key: str, items: list[Json]) -> None:
    resource = ctx.resources[reference["reference"]]
    for item in items:
        if item not in resource.get(key, ()):
            resource.setdefault(key, []).append(item)


def _service_request(ctx: Conversion, orc_seg: Seg | None, obr_seg: Seg | None) -> Json | None:
    if ctx.patient is None:
        return None  # ServiceRequest.subject is required
    idents = order_identifiers(ctx, orc_seg, obr_seg)
    # ORC-33 / OBR-53 alternate placer number (CX); ORC-4.2 / ORC-38 filler group number
    alternate = (obr_seg is not None and ctx.identifier(obr_seg.field(53), "PLAC")) or \
        (orc_seg is not None and ctx.identifier(orc_seg.field(33), "PLAC")) or None
    placer_group, filler_group = group_numbers(ctx, orc_seg) if orc_seg is not None \
        else (None, None)
    extra = [i for i in (alternate, filler_group) if i]
    reflex = obr_seg is not None and obr_seg[11].upper() == "G"  # OBR-11 G: generated order
    body: Json = {"status": _status(orc_seg), "intent": "reflex-order" if reflex else "order"}
    extensions: list[Json] = []
    authored = ctx.datetime(orc_seg[9]) if orc_seg is not None else None
    if orc_seg is not None:
        extensions += _business_events(orc_seg, authored)
    callback = [t for f in ((orc_seg.reps(14) if orc_seg is not None else []) or
                            (obr_seg.reps(17) if obr_seg is not None else []))
                if (t := dt.contact_point(f, "work"))]
    if callback:
        extensions.append({"url": _CALLBACK, "valueContactPoint": callback[0]})
    if orc_seg is not None and not orc_seg[5] and \
            (reason := dt.codeable(orc_seg.field(16))):
        extensions.append({"url": _STATUS_REASON, "valueCodeableConcept": reason})
    # OBR-13 (relevant clinical information): the IG's R5 supportingInfo extension holds a
    # CodeableReference, a type R4 does not have; not mapped rather than sent invalid
    if extensions:
        body["extension"] = extensions
    if security := security_labels(orc_seg):
        body["meta"] = {"security": security}
    if idents or extra:
        body["identifier"] = idents + extra
    if placer_group:
        body["requisition"] = placer_group
    if obr_seg is not None and (code := dt.codeable(obr_seg.field(4))):
        body["code"] = code
    if obr_seg is not None:
        details = [c for n in (46, 47) for f in obr_seg.reps(n) if (c := dt.codeable(f))]
        if details:
            body["orderDetail"] = details
    priority = (obr_seg[5] if obr_seg is not None else "") or \
        (orc_seg.field(7)[6] if orc_seg is not None else "") or \
        (obr_seg.field(27)[6] if obr_seg is not None else "")
    if p := vocabulary.code("ExtendedPriorityCodes", priority) or _PRIORITY.get(priority.upper()):
        body["priority"] = p
    if obr_seg is not None:
        based_on = [{"type": "ServiceRequest", "identifier": i}
                    for n, code in ((1, "PLAC"), (2, "FILL"))
                    if (i := ctx.entity_identifier(obr_seg.field(29).part(n), code))]
        if based_on:
            body["basedOn"] = based_on
    body["subject"] = {"reference": ctx.patient}
    if ctx.encounter:
        body["encounter"] = {"reference": ctx.encounter}
    if obr_seg is not None and (when := ctx.datetime(obr_seg[6])):
        body["occurrenceDateTime"] = when
    else:
        body.update((orc_seg is not None and _occurrence(ctx, orc_seg.field(7))) or
                    (obr_seg is not None and _occurrence(ctx, obr_seg.field(27))) or {})
    if authored:
        body["authoredOn"] = authored
    if requester := _requester(ctx, orc_seg, obr_seg):
        body["requester"] = requester
    if orc_seg is not None and (where := vocabulary.coding("OrderType", orc_seg[29])):
        body["locationCode"] = [{"coding": [where]}]
    if obr_seg is not None:
        reasons = [c for f in obr_seg.reps(31) if (c := dt.codeable(f))]
        if reasons:
            body["reasonCode"] = reasons
    key = (ctx.distinct("ServiceRequest", ("order", dt.identifier_key(idents[0]))) if idents
           else ctx.local_key("ServiceRequest"))
    resource = ctx.add("ServiceRequest", key, body)
    ctx.order = resource
    return resource


def security_labels(orc_seg: Seg | None) -> list[Json]:
    """ORC-28 confidentiality -> meta.security, by the IG's ConfidentialityCode map."""
    if orc_seg is None:
        return []
    return [c for f in orc_seg.reps(28) if (c := vocabulary.coding("ConfidentialityCode", f[1]))]


def obr(ctx: Conversion, seg: Seg) -> None:
    document.finish(ctx)  # an OBR after a TXA starts an order group: the document is done
    pending, ctx.pending_orc = ctx.pending_orc, None
    request = _service_request(ctx, pending, seg)
    ctx.report = None
    ctx.observation = None
    if ctx.message_code.upper() in _RESULT_MESSAGES:
        ctx.report = _diagnostic_report(ctx, seg, request)


def _diagnostic_report(ctx: Conversion, seg: Seg, request: Json | None) -> Json:
    idents = [i for i in (ctx.entity_identifier(seg.field(3), "FILL"),
                          ctx.entity_identifier(seg.field(2), "PLAC")) if i]
    # OBR-25 by the IG's ResultStatus map, else the old reading of the codes it leaves out
    body: Json = {"status": vocabulary.code("ResultStatus[Non-Queries]", seg[25]) or
                  _REPORT_STATUS.get(seg[25].upper(), "unknown")}
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
    interpreters = [r for f in seg.reps(32)
                    if (r := practitioner_role(ctx, practitioner(ctx, _ndl_person(ctx, f))))]
    if interpreters:
        body["resultsInterpreter"] = interpreters
    performers = []
    for n, function, display in ((34, "SPRF", "secondary performer"),
                                 (35, "TRANS", "Transcriber")):
        for f in seg.reps(n):
            if role := practitioner_role(ctx, practitioner(ctx, _ndl_person(ctx, f))):
                performers.append({**role, "extension": [{
                    "url": _PERFORMER_FUNCTION, "valueCodeableConcept": {"coding": [
                        dt.coding(function, display, _PARTICIPATION)]}}]})
    if performers:
        body["performer"] = performers
    key = (ctx.distinct("DiagnosticReport", ("report", dt.identifier_key(idents[0]))) if idents
           else ctx.local_key("DiagnosticReport"))
    return ctx.add("DiagnosticReport", key, body)


def _ndl_person(ctx: Conversion, f: Field) -> Field:
    """NDL.1 is a CNN (id & family & given ...), laid out like XCN in its subcomponents."""
    return f.part(1)
