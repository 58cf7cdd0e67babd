"""The Bundle around a conversion's resources: transaction (default) or batch.

Every entry is a ``PUT Type/id`` with the deterministic id, so the server creates the resource
the first time and updates it when the same business identifiers come again (a resent message,
an A08 after an A01) instead of duplicating it. ``fullUrl`` is ``urn:uuid:<id>``.
"""

from __future__ import annotations

from conduit.fhir.context import Conversion, Json
from conduit.fhir.ids import resource_id

__all__ = ["bundle"]


def bundle(ctx: Conversion) -> Json:
    entries = []
    for reference, resource in ctx.resources.items():
        entries.append({
            "fullUrl": f"urn:uuid:{resource['id']}",
            "resource": resource,
            "request": {"method": "PUT", "url": reference},
        })
    out: Json = {
        "resourceType": "Bundle",
        "id": resource_id("Bundle", *ctx.message_key),
        "type": ctx.options.bundle_type,
    }
    if stamp := ctx.instant(ctx.msh[7]):
        out["timestamp"] = stamp
    if ctx.message.control_id:
        out["identifier"] = {"value": ctx.message.control_id}
    out["entry"] = entries
    return out
