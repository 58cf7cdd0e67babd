"""Deterministic resource ids: the same business identifiers always give the same id.

A resent or updated message (ADT^A08 after A01, a corrected ORU) then PUTs onto the resources the
first one created instead of creating duplicates. The id is a UUID v5 over the resource type and
the identifying parts (e.g. ``Patient`` + identifier system + value), so two different kinds of
resource never collide and nothing in the id reveals the identifier (PHI) it came from.
"""

from __future__ import annotations

import hashlib
import uuid

__all__ = ["NAMESPACE", "resource_id"]

NAMESPACE = uuid.UUID("6f0f3d5e-8a55-5c1e-9d1b-2f8f0c6d1a7e")
"""Conduit's UUID v5 namespace for FHIR resource ids (fixed forever: changing it re-keys data)."""


_PREFIX = NAMESPACE.bytes


def resource_id(resource_type: str, *parts: str) -> str:
    """``resource_id("Patient", "urn:oid:1.2.3", "12345")`` -> a stable UUID string.

    Exactly ``uuid.uuid5(NAMESPACE, name)``, computed without building UUID objects (this runs
    for every resource of every message)."""
    name = resource_type + "\x1f" + "\x1f".join(parts)
    digest = bytearray(hashlib.sha1(_PREFIX + name.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
