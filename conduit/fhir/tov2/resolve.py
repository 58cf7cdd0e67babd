"""References inside a Bundle: ``Patient/1``, ``urn:uuid:...`` or an absolute URL."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

__all__ = ["Index"]


class Index:
    """The resources given (one resource or a Bundle's entries), found by reference."""

    def __init__(self, data: Json) -> None:
        if data.get("resourceType") == "Bundle":
            entries = [(e.get("fullUrl"), e["resource"]) for e in data.get("entry", ())
                       if isinstance(e.get("resource"), dict)]
        else:
            entries = [(None, data)]
        self.resources: list[Json] = [r for _, r in entries]
        self._by: dict[str, Json] = {}
        for full_url, r in entries:
            key = f"{r.get('resourceType')}/{r.get('id')}"
            self._by[key] = r
            if full_url:
                self._by[full_url] = r

    def all(self, kind: str) -> list[Json]:
        return [r for r in self.resources if r.get("resourceType") == kind]

    def resolve(self, reference: Json | None) -> Json | None:
        """The resource a Reference points at, when it is in the Bundle."""
        if not reference:
            return None
        ref = str(reference.get("reference", ""))
        if ref in self._by:
            return self._by[ref]
        parts = ref.rstrip("/").split("/")
        if len(parts) >= 2:  # absolute URL or versioned: keep Type/id
            if "_history" in parts:
                parts = parts[: parts.index("_history")]
            return self._by.get("/".join(parts[-2:]))
        return None
