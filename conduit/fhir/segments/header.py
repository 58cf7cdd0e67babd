"""MSH (+ EVN) -> MessageHeader and Provenance (IG: MSH[MessageHeader], MSH[Provenance]).

The MessageHeader records where the message came from; the Provenance, made last, names every
resource of the Bundle as its target, so a FHIR server can answer "which v2 message made this".
"""

from __future__ import annotations

from urllib.parse import quote

from conduit.fhir import datatypes as dt
from conduit.fhir.context import Conversion, Json, ref
from conduit.fhir.entities import organization_from_hd, practitioner
from conduit.fhir.v2 import Field

_EVENT = dt.table_uri("0003")
_MESSAGE_TYPE = dt.table_uri("0076")
_SKIP = frozenset({"MessageHeader", "Provenance"})
_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


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
    software = ctx.message.segments("SFT")
    if software:
        sft = ctx.seg(software[0])
        if sft[3]:
            source["software"] = sft[3]
        if sft[2]:
            source["version"] = sft[2]
    # source.endpoint is required: MSH-24 (v2.7+ network address), else from MSH-3
    source["endpoint"] = endpoint(msh.field(24)) or endpoint(sending_app) or "unknown"
    body["source"] = source
    destinations = []
    for app, facility in zip(msh.reps(5) or [msh.field(5)], msh.reps(6) or [msh.field(6)],
                             strict=False):
        target = endpoint(msh.field(25)) or endpoint(app)
        if not target:
            continue
        dest: Json = {"endpoint": target}
        if app[1]:
            dest["name"] = app[1]
        if receiver := organization_from_hd(ctx, facility):
            dest["receiver"] = receiver
        destinations.append(dest)
    if destinations:
        body["destination"] = destinations
    if sender := organization_from_hd(ctx, msh.field(4)):
        body["sender"] = sender
    ctx.add("MessageHeader", ctx.message_key, body)


def provenance(ctx: Conversion) -> None:
    """The Provenance of everything made from this message (target is required: none, none)."""
    targets = [ref(r) for r in ctx.resources.values() if r["resourceType"] not in _SKIP]
    recorded = ctx.instant(ctx.msh[7])
    if not targets or not recorded:
        return
    msh = ctx.msh
    body: Json = {"target": targets, "recorded": recorded}
    evn = ctx.message.segments("EVN")
    if evn:
        seg = ctx.seg(evn[0])
        if occurred := ctx.datetime(seg[6]) or ctx.datetime(seg[2]):
            body["occurredDateTime"] = occurred
        if reason := dt.codeable(seg.field(4), "0062"):
            body["reason"] = [reason]
    trigger = msh.field(9)[2]
    if trigger:
        body["activity"] = {"coding": [dt.coding(trigger, "", _EVENT)]}
    who = organization_from_hd(ctx, msh.field(4)) or _device(ctx, msh.field(3))
    if who is None:
        return
    agents = [{"type": {"coding": [dt.coding("author", "Author", _PARTICIPANT)]}, "who": who}]
    if evn and (operator := practitioner(ctx, ctx.seg(evn[0]).field(5))):
        agents.append({"type": {"coding": [dt.coding("enterer", "Enterer", _PARTICIPANT)]},
                       "who": operator})  # EVN-5 operator id
    body["agent"] = agents
    if ctx.message.control_id:
        body["entity"] = [{"role": "source",
                           "what": {"identifier": {"value": ctx.message.control_id},
                                    "display": f"HL7 v2 message {ctx.message.message_type}"}}]
    ctx.add("Provenance", ctx.message_key, body)


def _device(ctx: Conversion, app: Field) -> Json | None:
    """The sending application (MSH-3) as a Device, when no facility is named."""
    if not app[1]:
        return None
    body = {"deviceName": [{"name": app[1], "type": "user-friendly-name"}]}
    return ref(ctx.add("Device", ("app", app[1], app[2]), body))
