"""The Bundle around a conversion's resources: transaction (default) or batch.

Every entry is a ``PUT Type/id`` with the deterministic id, so the server creates the resource
the first time and updates it when the same business identifiers come again (a resent message,
an A08 after an A01) instead of duplicating it. ``fullUrl`` is ``urn:uuid:<id>``.

With ``conditional`` (transactions only), resources that carry an identifier with a system are
PUT as ``Type?identifier=system|value`` instead: the server updates the one it already holds
under that identifier, whatever its id (a patient first registered by another system), and
creates it otherwise. References then point at the entries' ``urn:uuid`` fullUrls, which the
server rewrites to the ids it settles on, as the FHIR transaction rules say.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from conduit.fhir.context import Conversion, Json
from conduit.fhir.datatypes import hd_system
from conduit.fhir.ids import resource_id

__all__ = ["bundle"]

# resources whose identifier names them in the real world (not a message's or order's own id)
_CONDITIONAL = frozenset({"Patient", "Practitioner", "Organization", "Encounter", "Coverage",
                          "Location", "RelatedPerson"})


def bundle(ctx: Conversion) -> Json:
    conditional = ctx.options.conditional and ctx.options.bundle_type == "transaction"
    if conditional:
        entries = [{"fullUrl": "urn:uuid:" + resource["id"], "resource": resource,
                    "request": {"method": "PUT",
                                "url": _conditional_url(resource) or reference}}
                   for reference, resource in ctx.resources.items()]
    else:
        entries = [{"fullUrl": "urn:uuid:" + resource["id"], "resource": resource,
                    "request": {"method": "PUT", "url": reference}}
                   for reference, resource in ctx.resources.items()]
    if conditional:
        for resource in ctx.resources.values():
            _to_fullurls(resource)
    out: Json = {
        "resourceType": "Bundle",
        "id": resource_id("Bundle", *ctx.message_key),
        "type": ctx.options.bundle_type,
    }
    if stamp := ctx.instant(ctx.msh[7]):
        out["timestamp"] = stamp
    if ctx.control_id:
        # MSH-10 ids are the sending application's: its OID/URI (MSH-3) is their system, else
        # the sender's own (conduit/fhir/ids.py), never a bare value
        system = hd_system(ctx.msh.field(3)) or ctx.systems.sender
        out["identifier"] = {"system": system, "value": ctx.control_id}
    out["entry"] = entries
    return out


def _conditional_url(resource: Json) -> str | None:
    if resource["resourceType"] not in _CONDITIONAL:
        return None
    for ident in resource.get("identifier", ()):
        if ident.get("system") and ident.get("value"):
            token = quote(f"{ident['system']}|{ident['value']}", safe="")
            return f"{resource['resourceType']}?identifier={token}"
    return None


_REFERENCE_KEYS = frozenset({"reference", "display", "type", "identifier", "extension", "id"})


def _to_fullurls(node: Any) -> None:
    """Every ``{"reference": "Type/id"}`` inside ``node`` becomes ``urn:uuid:id``."""
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and "/" in ref and node.keys() <= _REFERENCE_KEYS:
            node["reference"] = "urn:uuid:" + ref.rsplit("/", 1)[1]
        for value in node.values():
            if isinstance(value, dict | list):
                _to_fullurls(value)
    elif isinstance(node, list):
        for item in node:
            _to_fullurls(item)
