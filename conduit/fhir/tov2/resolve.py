"""References inside a Bundle: ``Patient/1``, ``urn:uuid:...``, an absolute URL, or a logical
reference (``{"identifier": {...}}``) matching exactly one resource's identifier."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

__all__ = ["Index"]


class Index:
    """The resources given (one resource or a Bundle's entries), found by reference."""

    def __init__(self, data: Json) -> None:
        self.is_bundle = data.get("resourceType") == "Bundle"
        if self.is_bundle:
            entries = [(e.get("fullUrl"), e["resource"]) for e in data.get("entry", ())
                       if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
        else:
            entries = [(None, data)]
        self.resources: list[Json] = [r for _, r in entries]
        self._entry = {id(r): n for n, r in enumerate(self.resources, start=1)}
        self._by: dict[str, Json] = {}
        for full_url, r in entries:
            key = f"{r.get('resourceType')}/{r.get('id')}"
            self._by[key] = r
            if full_url:
                self._by[full_url] = r

    def all(self, kind: str) -> list[Json]:
        return [r for r in self.resources if r.get("resourceType") == kind]

    def name(self, resource: Json) -> str:
        """How errors name a resource: type, id and entry number, never its data. A Patient's
        id is left out (ids are often MRNs)."""
        kind = str(resource.get("resourceType") or "resource")
        named = f"{kind}/{resource['id']}" if resource.get("id") and kind != "Patient" else kind
        entry = self._entry.get(id(resource))
        return f"{named} (entry {entry})" if self.is_bundle and entry else named

    def resolve(self, reference: Json | None) -> Json | None:
        """The resource a Reference points at, when it is in the Bundle."""
        if not reference or not isinstance(reference, dict):
            return None
        ref = str(reference.get("reference") or "")
        if not ref:
            return self._by_identifier(reference)
        if ref in self._by:
            return self._by[ref]
        parts = ref.rstrip("/").split("/")
        if len(parts) >= 2:  # absolute URL or versioned: keep Type/id
            if "_history" in parts:
                parts = parts[: parts.index("_history")]
            return self._by.get("/".join(parts[-2:]))
        return None

    def _by_identifier(self, reference: Json) -> Json | None:
        """The one resource (of ``reference.type``, if given) with the same identifier system
        and value; None when there is none or more than one."""
        ident = reference.get("identifier")
        if not isinstance(ident, dict) or not ident.get("value"):
            return None
        kind = reference.get("type")
        key = (ident.get("system"), ident["value"])
        found = [r for r in self.resources if (not kind or r.get("resourceType") == kind)
                 and any((i.get("system"), i.get("value")) == key for i in _identifiers(r))]
        return found[0] if len(found) == 1 else None


def _identifiers(resource: Json) -> list[Json]:
    idents = resource.get("identifier")
    if isinstance(idents, dict):  # 0..1 in a few resources
        return [idents]
    return [i for i in idents or () if isinstance(i, dict)]
