"""MSH (+ EVN) -> MessageHeader and Provenance (IG: MSH[MessageHeader], MSH[Provenance]).

The MessageHeader records where the message came from; the Provenance, made last, names every
resource of the Bundle as its target, so a FHIR server can answer "which v2 message made this".
"""

from __future__ import annotations

import re
from urllib.parse import quote

from conduit.fhir import datatypes as dt
from conduit.fhir import vocabulary
from conduit.fhir.codesystems import system_uri
from conduit.fhir.context import Conversion, Json
from conduit.fhir.entities import organization, organization_from_hd, practitioner
from conduit.fhir.v2 import Field, Seg

_EVENT = dt.table_uri("0003")
_MESSAGE_TYPE = dt.table_uri("0076")
_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


def _unknown() -> Json:
    """A primitive's extension saying its value is unknown (a fresh dict: bodies are edited)."""
    return {"extension": [{"url": _ABSENT, "valueCode": "unknown"}]}


def endpoint(app: Field) -> str | None:
    """MessageHeader endpoints are URIs: an OID/URI application id, else the application's name
    as a relative URI (percent-encoded), which FHIR's ``uri`` type allows."""
    system = dt.hd_system(app)
    if system:
        return system
    return quote(app[1], safe="") if app[1] else None


def message_header(ctx: Conversion) -> None:
    msh = ctx.msh
    trigger, code = msh.field(9)[2], msh.field(9)[1]
    body: Json = {"eventCoding": dt.coding(trigger, "", _EVENT) if trigger
                  else dt.coding(code or "UNKNOWN", "", _MESSAGE_TYPE)}
    sending_app = msh.field(3)
    source: Json = {}
    if sending_app[1]:
        source["name"] = sending_app[1]
    sft = ctx.first("SFT")
    if sft is not None:
        if sft[3]:
            source["software"] = sft[3]
        if sft[2]:
            source["version"] = sft[2]
    # source.endpoint is required: MSH-24 (v2.7+ network address), else from MSH-3, else
    # said to be unknown (IG: data-absent-reason when neither is valued)
    if source_url := endpoint(msh.field(24)) or endpoint(sending_app):
        source["endpoint"] = source_url
    else:
        source["_endpoint"] = _unknown()
    body["source"] = source
    destinations: list[Json] = []
    for app, facility in zip(msh.reps(5) or [msh.field(5)], msh.reps(6) or [msh.field(6)],
                             strict=False):
        target = endpoint(msh.field(25)) or endpoint(app)
        if not target:  # no MSH-25 nor MSH-5: a receiver named alone has an unknown endpoint
            if not destinations and (receiver := organization(ctx, msh.field(23)) or
                                     organization_from_hd(ctx, facility)):
                destinations.append({"_endpoint": _unknown(), "receiver": receiver})
            continue
        dest: Json = {"endpoint": target}
        if app[1]:
            dest["name"] = app[1]
        if device := _device(ctx, app):  # MSH-5 receiving application
            dest["target"] = device
        # MSH-23 receiving network address's organization (XON), else MSH-6 facility (HD)
        if receiver := organization(ctx, msh.field(23)) or organization_from_hd(ctx, facility):
            dest["receiver"] = receiver
        destinations.append(dest)
    if destinations:
        body["destination"] = destinations
    if sender := organization_from_hd(ctx, msh.field(4)):
        body["sender"] = sender
        if country := vocabulary.code("CountryCode", msh[17]):  # MSH-17 country code
            org = ctx.resources[sender["reference"]]
            if not org.get("address"):
                org["address"] = [{"country": country}]
    if responsible := organization(ctx, msh.field(22)):  # MSH-22 sending responsible org
        body["responsible"] = responsible
    if meta := _meta(msh):
        body["meta"] = meta
    language = msh.field(19)[1]
    if _BCP47.fullmatch(language):  # MSH-19 principal language (ISO 639 codes are BCP 47)
        body["language"] = language.lower()
    ctx.header = ctx.add_ref("MessageHeader", ctx.message_key, body)["reference"]


_BCP47 = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*")


def _meta(msh: Seg) -> Json:
    """MSH-11 processing id/mode -> meta.tag (PT[Meta]); MSH-8 security, MSH-26
    confidentiality and MSH-27 handling instructions -> meta.security (IG MSH map)."""
    tags = [dt.coding(code, "", dt.table_uri(table))
            for code, table in ((msh.field(11)[1], "0103"), (msh.field(11)[2], "0207")) if code]
    security = [{"code": msh[8]}] if msh[8] else []
    for n, table_name in ((26, "ConfidentialityClassification"),
                          (27, "SecurityLabelHandlingInstructions")):
        for f in msh.reps(n):
            if hit := vocabulary.coding(table_name, f[1]):
                security.append(hit)
            elif f[1]:
                security.append(dt.coding(f[1], f[2], system_uri(f[3]) if f[3] else None))
    meta: Json = {}
    if tags:
        meta["tag"] = tags
    if security:
        meta["security"] = security
    return meta


def provenance(ctx: Conversion) -> None:
    """The Provenance of everything made from this message (target is required: none, none)."""
    # ctx.resources is keyed by each resource's "Type/id", its reference
    header = ctx.header  # the one MessageHeader (no Provenance is made before this one)
    targets = [{"reference": key} for key in ctx.resources if key != header]
    event = ctx.first("EVN")
    # EVN-2 recorded date/time (IG EVN[Provenance]), else the message's own time
    recorded = (ctx.instant(event[2]) if event is not None else None) or ctx.instant(ctx.msh[7])
    if not targets or not recorded:
        return
    msh = ctx.msh
    body: Json = {"target": targets, "recorded": recorded}
    if event is not None:
        seg = event
        if occurred := ctx.datetime(seg[6]) or ctx.datetime(seg[2]):
            body["occurredDateTime"] = occurred
        if seg[4].upper() == "U":  # reason unknown: said, not coded
            body["reason"] = [{"extension": [{"url": _ABSENT, "valueCode": "unknown"}]}]
        elif reason := dt.codeable(seg.field(4), "0062"):
            body["reason"] = [reason]
        if where := _event_location(ctx, seg.field(7)):
            body["location"] = where
    trigger = msh.field(9)[2]
    if trigger:  # with table 0003's display (IG EventType), where it has the code
        body["activity"] = {"coding": [vocabulary.coding("EventType", trigger) or
                                       dt.coding(trigger, "", _EVENT)]}
    who = organization_from_hd(ctx, msh.field(4)) or _device(ctx, msh.field(3))
    if who is None:
        return
    agents = [{"type": {"coding": [dt.coding("author", "Author", _PARTICIPANT)]}, "who": who}]
    if event is not None and (operator := practitioner(ctx, event.field(5))):
        agents.append({"type": {"coding": [dt.coding("enterer", "Enterer", _PARTICIPANT)]},
                       "who": operator})  # EVN-5 operator id
    body["agent"] = agents
    if ctx.control_id:
        body["entity"] = [{"role": "source",
                           "what": {"identifier": {
                               "system": dt.hd_system(ctx.msh.field(3)) or ctx.systems.sender,
                               "value": ctx.control_id},
                                    "display": f"HL7 v2 message {ctx.message_type}"}}]
    ctx.add("Provenance", ctx.message_key, body)


def _event_location(ctx: Conversion, hd: Field) -> Json | None:
    """EVN-7 event facility (HD) -> Reference(Location)."""
    if not hd[1] and not hd[2]:
        return None
    body: Json = {"mode": "instance"}
    if system := dt.hd_system(hd):
        body["identifier"] = [{"system": "urn:ietf:rfc:3986", "value": system}]
    if hd[1]:
        body["name"] = hd[1]
    return ctx.add_ref("Location", ("event-facility", system or hd[1]), body)


def _device(ctx: Conversion, app: Field) -> Json | None:
    """The sending application (MSH-3) as a Device, when no facility is named."""
    if not app[1]:
        return None
    body = {"deviceName": [{"name": app[1], "type": "user-friendly-name"}]}
    return ctx.add_ref("Device", ("app", app[1], app[2]), body)
